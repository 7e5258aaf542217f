"""MODEL_CARD.md, written from the same metadata as ``model.json``.

Generated rather than hand-edited so the figures in the card are the figures
the converter measured; ``--notes`` adds hand-written text (e.g. "provisional").
"""

from __future__ import annotations

import json
from typing import Any, Mapping


def _pct(value: Any) -> str:
    try:
        return f"{100.0 * float(value):.2f}%"
    except (TypeError, ValueError):
        return "n/a"


def _metric_lines(metrics: Mapping[str, Any]) -> str:
    if not metrics:
        return "- (the training metadata recorded no metrics)\n"
    lines = []
    for key, value in metrics.items():
        if isinstance(value, (dict, list)):
            text = json.dumps(value, sort_keys=True)
        elif isinstance(value, float):
            text = f"{value:.4f}"
        else:
            text = str(value)
        lines.append(f"- `{key}`: {text}")
    return "\n".join(lines) + "\n"


def _geometry_section(meta: Mapping[str, Any]) -> str:
    """What the geometry stage is, which files it needs and how it scored (format-2 bundles)."""
    geometry = meta.get("geometry")
    if not geometry:
        return ""
    mesh, head, fusion = geometry["landmarks"], geometry["head"], geometry["fusion"]
    w_cls, w_geo = fusion["weights"]
    lines = [
        "## Geometry stage\n\n",
        f"- landmarks: `{mesh['file']}` (sha256 `{mesh['sha256'][:16]}…`; {mesh.get('source', '')}; "
        f"licence {mesh.get('licence', 'see the file')}), {mesh.get('points', 468)} points, on the "
        f"face crop before light normalisation, edge-padded by {mesh.get('pad', 0.25):g} of its side\n"
        f"- alignment `{geometry['alignment']}`, features `{geometry['features']}`, head "
        f"`{head['file']}` ({head.get('kind', '')}, sha256 `{head['sha256'][:16]}…`)\n"
        f"- fusion `{fusion['rule']}`: sigmoid(({w_cls:g} x logit(classifier) + {w_geo:g} x "
        f"logit(geometry)) / {w_cls + w_geo:g})\n",
    ]
    level = geometry.get("level")
    if level:
        start = ("the mesh's outer eye corners on the upright crop" if level["by"] == "eye-line"
                 else f"the face detector's eye points where they say more than "
                      f"{level.get('detector_beyond_degrees', 0):g} degrees (else the mesh's "
                      f"outer eye corners on the upright crop)")
        lines.append(f"- level (format 4, `{level['by']}`): a head rolled more than "
                     f"{level['beyond_degrees']:g} degrees is turned back to that before the "
                     f"classifier and the mesh score the crop; the roll starts from {start} and "
                     f"is measured again by the mesh on the turned crop, at most "
                     f"{level['rounds']} more times (reports/tilt/)\n")
    figures = meta.get("metrics", {}).get("fusion") or {}
    if figures:
        lines.append("\nOn the validation split (float classifier; each at its own 1%-false-open "
                     "threshold, the fused one is the bundle's):\n\n"
                     "| | ROC AUC | recall | false opens |\n|---|---|---|---|\n" + "".join(
                         f"| {name} | {f['roc_auc']:.4f} | {_pct(f['recall'])} | "
                         f"{_pct(f['false_open_rate'])} |\n"
                         for name, f in figures.items() if isinstance(f, dict)))
    return "".join(lines)


def model_card(meta: Mapping[str, Any], notes: str = "") -> str:
    parity = meta["metrics"]["parity"]
    training = meta["training"]
    pre = meta["preprocess"]
    data = training.get("data") or {}
    inp, out = meta["input"], meta["output"]
    sections = [
        f"# Model card: {meta.get('name', 'model')}\n",
        (notes.strip() + "\n") if notes.strip() else "",
        "## What it does\n",
        "Scores one face crop: the probability that the person is smiling (\"happy\")"
        + (", fused from the int8 classifier's score and the geometry stage's (below). "
           if meta.get("geometry") else ". ")
        + f"The door opens only when the score reaches the threshold **{meta['threshold']:g}** "
        + ("(chosen on the fused validation scores) " if meta.get("geometry")
           else "(from the training metadata) ")
        + "on enough recent frames; see the daemon's vote settings.\n",
        "## Input and preprocessing\n",
        f"- tensor: {inp['shape']} {inp['dtype']} (scale {inp['scale']:.8g}, zero point "
        f"{inp['zero_point']}), {inp.get('layout', 'NHWC')}, {pre['color']}\n"
        f"- crop: `{pre['crop']}` with margin {pre['margin']:g}, resized to {pre['size']}x{pre['size']}, "
        + (f"light normalisation `{pre['normalize']}` (local contrast of the crop's luminance), "
           if pre.get("normalize", "none") != "none" else "")
        + f"pixels scaled `{pre['scale']}` (uint8 / 255) before quantization\n"
        f"- output: {out['shape']} {out['dtype']} (scale {out['scale']:.8g}, zero point "
        f"{out['zero_point']}) = "
        + ("one logit per view of the face (the crop, then its mirror image when there are "
           "two); the happy score is the mean of their sigmoids, computed by the daemon in "
           "float (bundle format 3)\n" if out.get("score") == "view_logits"
           else "happy score in [0, 1]\n"),
        _geometry_section(meta),
        "## Training data\n",
        (f"```json\n{json.dumps(data, indent=2, sort_keys=True)}\n```\n" if data
         else "- (the training metadata recorded no data summary)\n"),
        f"Source model: `{training['model_file']}` (sha256 `{training['model_sha256'][:16]}…`).\n",
        "## Metrics\n",
        "From training (validation data, float model):\n\n" + _metric_lines(meta["metrics"]["training"]),
        f"\nint8 parity on the hold-out ({parity['holdout']}; n={parity['n']}, threshold "
        f"{parity['threshold']:g}):\n\n"
        f"| | accuracy |\n|---|---|\n| float Keras | {_pct(parity['float_accuracy'])} |\n"
        f"| int8 TFLite | {_pct(parity['int8_accuracy'])} |\n\n"
        f"- decisions agree on {_pct(parity['agreement'])} of images; largest score difference "
        f"{parity['max_score_diff']:.4f}, mean {parity['mean_score_diff']:.4f}\n"
        f"- conversion refuses a drop above {parity['max_drop_pp']:g} percentage points\n"
        f"- model file: {meta['size_bytes']:,} bytes, full-integer int8, calibrated on "
        f"{meta['quantization']['calibration']['n']} training images\n",
        "## Limits: read before you rely on it\n",
        "- **A smile is not an identity.** Anyone who smiles at the camera, a stranger included, "
        "can open the door. This is a toy from a course exercise, not an access control system.\n"
        "- **A printed photo may pass.** There is no liveness check: a photo or a screen showing a "
        "smiling face can open the door.\n"
        "- Trained on cropped, mostly frontal faces from public photo collections (see the data "
        "above). Side views, masks, glasses glare, strong backlight, night-time infrared images, "
        "children and people the collections under-represent may score worse; measure on your own "
        "door camera with `happyhouse-eval` before relying on it.\n"
        "- Accuracy figures above come from image sets, not from your camera. "
        + ("The parity hold-out is a split of the calibration data and may overlap the training "
           "data: it proves the int8 model decides like the float model, not that the model "
           "generalises.\n" if str(parity["holdout"]).startswith("seeded") else
           "The parity hold-out holds images the model was not trained on; it proves the int8 "
           "model decides like the float model.\n"),
        "## Runtime\n",
        f"Converted with {json.dumps(meta['runtime']['converted_with'], sort_keys=True)}; "
        f"verified with `{meta['runtime']['verified_with']}`. The bundle's golden vectors let the "
        "device check its runtime reproduces these outputs before it arms.\n",
    ]
    return "\n".join(s for s in sections if s)

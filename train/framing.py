"""How the door frames a face, against how the training faces were framed.

The training faces come already cropped (GENKI-4K by an OpenCV frontal-face
detector, SMILEsmileD tighter); the door crops the box its own face gate
finds. This measures both, on the general validation split only:

* **framing**: each face centred on a gray canvas, the door's gate run on it;
  the ratio of the gate's box side to the face's own crop side, per source
  (1.0: the door frames it as the dataset did);
* **the model at the door's framing**: every validation face (and its
  door-shifted copy, :func:`happyhouse.train.geometry.door_shift`) re-cropped
  the door's way (gate box, the contract's margin), scored by the classifier
  and the geometry head as the bundle fuses them, against the same faces'
  original crops.

    python -m happyhouse.train.framing --model models/general/model.keras --json OUT.json

The Happy House frames are not read. Desktop-only (Keras).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from happyhouse.daemon.cli_errors import run_main
from happyhouse.daemon.errors import DataError, ModelError, refuse_unless
from happyhouse.daemon.filesafety import a_path, check_file_creatable, path_arg, write_text_file

log = logging.getLogger("happyhouse.train.framing")

#: a dataset face is scaled to this side and centred on a gray canvas for the gate
FACE_SIDE, CANVAS = 160, (480, 640)
GRAY = (110, 110, 110)


def on_canvas(face_rgb: np.ndarray) -> np.ndarray:
    """A dataset face crop, scaled to ``FACE_SIDE`` and centred on a gray BGR canvas."""
    import cv2

    bgr = cv2.cvtColor(np.ascontiguousarray(face_rgb), cv2.COLOR_RGB2BGR)
    face = cv2.resize(bgr, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_LINEAR)
    top = (CANVAS[0] - FACE_SIDE) // 2
    left = (CANVAS[1] - FACE_SIDE) // 2
    return cv2.copyMakeBorder(face, top, CANVAS[0] - FACE_SIDE - top, left,
                              CANVAS[1] - FACE_SIDE - left, cv2.BORDER_CONSTANT, value=GRAY)


def door_framed(faces_rgb: np.ndarray, gate, margins: Sequence[float] = (0.0,), size: int = 64):
    """({margin: crops the door would make of these faces}, found, box side / crop side, offset).

    The gate runs once per face; each margin crops its box. ``found`` is False
    where the gate finds no face (the crops are then left black). The offset is
    the box centre's (dx, dy) from the face's, in crop sides.
    """
    from happyhouse.daemon.preprocess import Preprocess, crop_box, prepare_frame

    spec = Preprocess(crop="face", margin=0.0, size=size)
    crops = {m: np.zeros((len(faces_rgb), size, size, 3), np.uint8) for m in margins}
    found = np.zeros(len(faces_rgb), bool)
    ratio = np.full(len(faces_rgb), np.nan)
    offset = np.full((len(faces_rgb), 2), np.nan)
    for i, face in enumerate(faces_rgb):
        canvas = on_canvas(face)
        box = gate.find(canvas)
        if box is None:
            continue
        x, y, w, h = box
        found[i] = True
        ratio[i] = max(w, h) / FACE_SIDE
        offset[i] = ((x + w / 2 - CANVAS[1] / 2) / FACE_SIDE, (y + h / 2 - CANVAS[0] / 2) / FACE_SIDE)
        for m in margins:
            # the contract's square crop; a negative margin (a tighter crop) is studied here only
            x0, y0, x1, y1 = crop_box(canvas.shape, box, m)
            crops[m][i] = prepare_frame(canvas, (x0, y0, x1 - x0, y1 - y0), spec)
    return crops, found, ratio, offset


def recall_at(labels: np.ndarray, scores: np.ndarray, max_false_open: float = 0.01) -> float:
    from happyhouse.daemon.roc import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    ok = np.flatnonzero(fpr <= max_false_open)
    return float(tpr[ok[-1]]) if len(ok) else 0.0


def figures(labels, classifier, geometry, weights) -> Dict[str, float]:
    from happyhouse.daemon.geometry import fuse
    from happyhouse.daemon.roc import roc_auc

    out = {"n": int(len(labels)), "classifier_auc": roc_auc(labels, classifier),
           "classifier_recall_at_1pct": recall_at(labels, classifier)}
    if geometry is not None:
        fused = fuse(classifier, geometry, weights)
        out.update(geometry_auc=roc_auc(labels, geometry), fused_auc=roc_auc(labels, fused),
                   fused_recall_at_1pct=recall_at(labels, fused))
    return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in out.items()}


def run(args) -> dict:
    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.facegate import FaceGate
    from happyhouse.daemon.preprocess import Preprocess

    from .data import load_training_data
    from .geometry import door_shift, stage_beside, validation_mask
    from .trainer import inherited_normalize, load_model, predict

    model_path = Path(args.model)
    if not model_path.is_file():  # before minutes of loading the training faces
        raise ModelError(f"model {model_path} does not exist")
    spec = Preprocess(normalize=inherited_normalize(model_path))
    data = load_training_data([str(d) for d in args.data], spec.geometric())
    split = Path(args.split) if args.split else model_path.parent / "split.json"
    val = np.flatnonzero(validation_mask(data.ids, split))
    if len(val) == 0:  # "need at least one array to stack", a traceback
        raise DataError(f"none of --data's faces is in {split}'s validation split: give "
                        f"the data the model was trained on")
    # a face's source: the folder above its class folder (ROOT/happy/x.jpg -> ROOT's name)
    sources = np.array([Path(str(data.ids[i]).split("#")[0]).parent.parent.name for i in val])
    gate = FaceGate.from_config(load_config(None, {"latch.gpio": "mock"}))
    model = load_model(model_path)
    found_stage = stage_beside(model_path)
    stage = found_stage[0] if found_stage else None
    labels = data.labels[val]
    result: Dict[str, object] = {"model": str(model_path), "split": split.name,
                                 "margins": list(args.margins), "framing": {}, "copies": {}}
    for copy, faces in (("validation", data.images[val]),
                        ("door-shifted", door_shift(data.images[val]))):
        rows = {}
        by_margin, found, ratio, offset = door_framed(faces, gate, args.margins)
        if copy == "validation":
            for src in sorted(set(sources)):
                pick = found & (sources == src)
                result["framing"][src] = {
                    "faces": int((sources == src).sum()), "gate_found": int(pick.sum()),
                    "box_over_crop_median": round(float(np.median(ratio[pick])), 3),
                    "box_over_crop_iqr": [round(float(q), 3) for q in np.percentile(ratio[pick], [25, 75])],
                    "centre_offset_median": [round(float(v), 3) for v in np.median(offset[pick], axis=0)]}
        y = labels[found]

        def scored(crops):
            cls = predict(model, crops, spec)
            geo = None if stage is None else np.array([stage.score(im) for im in crops])
            return figures(y, cls, geo, stage.spec.weights if stage else (1, 0))

        rows["original crops"] = scored(faces[found])
        for m, crops in by_margin.items():
            rows[f"door-framed, margin {m:g}"] = scored(crops[found])
        result["copies"][copy] = rows
        for name, r in rows.items():
            log.info("%s, %s: %s", copy, name, r)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.framing", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=a_path,
                   help="a general model (.keras) with its split.json")
    p.add_argument("--data", type=path_arg, action="append",
                   help="its training data (default GENKI-4K and SMILEsmileD under $HAPPYHOUSE_DATA)")
    p.add_argument("--split", help="the split file (default split.json beside --model)")
    p.add_argument("--margins", type=float, nargs="+", default=[0.0],
                   help="door crop margins to compare")
    p.add_argument("--json", type=path_arg, help="write the figures here")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    # the way every tool ends: one line, exit 2 / 128 + N; it had its own, and a full disk,
    # Ctrl-C or SIGTERM gave a traceback or no line at all
    return run_main("framing", lambda: _main(argv))


def _main(argv: Optional[List[str]]) -> int:
    from happyhouse.daemon.datasets import data_root

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    refuse_unless([(all(-0.5 < m <= 1.0 for m in args.margins),
                    f"--margins must be numbers above -0.5 and at most 1, got {args.margins}")])
    if not args.data:
        root = data_root()
        if root is None:
            raise DataError("give --data or set HAPPYHOUSE_DATA")
        args.data = [root / "genki4k-train", root / "smilesmiled"]
    if args.json:  # checked before the work, so a wrong path is not found after it
        check_file_creatable(args.json, "--json")
    result = run(args)
    text = json.dumps(result, indent=1) + "\n"
    if args.json:
        write_text_file(args.json, text, "--json")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())


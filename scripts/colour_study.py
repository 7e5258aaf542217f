"""Does the shipped classifier lean on colour? (a study, not the product)

82% of the training faces (SMILEsmileD) are grayscale, GENKI-4K's 18% are colour, and a
door camera is colour with its own white balance; the augmentation has a grayscale term
(IR night mode) but no colour-balance one. Two measurements, no training, each with its
rule written before it ran (``reports/README.md``, "Colour"):

* ``gray``: every crop turned into its luminance (three equal channels) before the
  contract's CLAHE, on the validation split and its three door copies. A contract option
  "gray" would be worth it only if it helped the colour faces.
* ``cast``: every crop of the validation split and its door-shifted copy given one seeded
  camera colour cast (per-channel gains 0.75-1.25, saturation scaled 0.4-1.5). A
  colour-balance augmentation would be worth a fine-tune only if the casts cost >= 0.005 AUC.

Both fused 0.7:0.3 with the shipped geometry head's scores of the unchanged crops (the mesh
barely sees colour), per source, by the datasets' labels and the audited ones. Never reads
door frames.

::

    python scripts/colour_study.py --json reports/colour/metrics.json     # 3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aligned_crop_study import by_source_auc, data_paths  # noqa: E402  (sibling study scripts)
from ensemble_study import AUDITS, SHIPPED, classifier_scores, faces_and_geometry  # noqa: E402

#: the camera casts of ``cast``: per-channel gain range, saturation range, seed
GAINS, SATURATION, CAST_SEED = (0.75, 1.25), (0.4, 1.5), 7
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def luminance(crops: np.ndarray) -> np.ndarray:
    """uint8 RGB crops as three equal channels of their luminance."""
    import cv2

    gray = np.stack([cv2.cvtColor(np.ascontiguousarray(c), cv2.COLOR_RGB2GRAY) for c in crops])
    return np.repeat(gray[..., None], 3, axis=-1)


def colour_cast(crops: np.ndarray, seed: int = CAST_SEED) -> np.ndarray:
    """Each crop seen through its own camera: white-balance gains, then saturation."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(crops)
    for i, crop in enumerate(crops):
        x = crop.astype(np.float32) * rng.uniform(*GAINS, size=3)
        y = (x @ LUMA)[..., None]
        x = y + (x - y) * rng.uniform(*SATURATION)
        out[i] = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=Path("runs/ensemble"))
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from happyhouse.daemon.geometry import fuse
    from happyhouse.daemon.roc import roc_auc
    from happyhouse.train.audits import load_audits
    from happyhouse.train.label_audit import model_contract
    from happyhouse.train.trainer import load_model, predict

    args.cache.mkdir(parents=True, exist_ok=True)
    names, labels, copies, geometry = faces_and_geometry(data_paths(), args.cache)
    colour = classifier_scores(SHIPPED, copies, args.cache)
    audit = load_audits([Path(a) for a in AUDITS])
    net, spec = load_model(SHIPPED), model_contract(SHIPPED)

    def row(which: np.ndarray, probs: np.ndarray, geo: np.ndarray) -> dict:
        fused = fuse(probs, geo, (0.7, 0.3))
        out = by_source_auc([names[i] for i in which], labels[which], fused, audit)
        out["pooled"] = {"auc": round(float(roc_auc(labels[which], fused)), 4)}
        return out

    result = {"gray": {}, "cast": {}}
    for copy, (which, crops) in copies.items():
        result["gray"][copy] = {
            "colour": row(which, colour[copy], geometry[copy]),
            "gray": row(which, predict(net, luminance(crops), spec), geometry[copy])}
        print("gray", copy, json.dumps(result["gray"][copy]), flush=True)
    for copy in ("validation", "door-shifted"):
        which, faces = copies[copy]
        result["cast"][copy] = {
            "original": row(which, colour[copy], geometry[copy]),
            "colour-cast": row(which, predict(net, colour_cast(faces), spec), geometry[copy])}
        print("cast", copy, json.dumps(result["cast"][copy]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "the shipped classifier on luminance-only and colour-cast crops of the general "
                    "validation split and its door copies, fused 0.7:0.3 with the shipped geometry "
                    "head's scores of the unchanged crops; AUC per source and pooled",
            "command": "python scripts/colour_study.py --json reports/colour/metrics.json",
            "cast": {"gains": GAINS, "saturation": SATURATION, "seed": CAST_SEED},
            **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Would landmark-aligned crops carry a smile to the door better than the gate's box? (a study)

The classifier sees the square the face gate draws around a face. Datasets crop
their faces their own way (SMILEsmileD tighter than GENKI-4K, GENKI's detector
like the door's gate) and a door's visitor tilts and leans, so the same smile
reaches the network framed differently at each source. The door already runs the
face mesh for the geometry stage; its outer eye corners (33, 263) could place a
crop instead: eyes level, at a fixed distance apart and a fixed height, the same
framing for every source and the door.

This script measures that before any contract change, on the general split only
(never door frames):

1. ``prepare``: every face's eye corners from the mesh (on the crop, as the door
   runs it), the canonical framing (the medians of GENKI-4K's training faces,
   whose crops are like the gate's boxes), and the aligned crops of the split and
   of its three door copies (the door-framed ones aligned from the gray canvas the
   gate searched, with the mesh run on the gate's box crop, as a door would).
2. ``train``: the shipped classifier fine-tuned on aligned training crops.
3. ``judge``: fused 0.7:0.3 with the shipped geometry head (its scores on the
   door's box crops, from ``scripts/ensemble_study.py``'s cache), by the
   datasets' labels and the audited ones; the shipped model on box crops beside it.

::

    python scripts/ensemble_study.py --model models/general/model.keras   # the cache
    python scripts/aligned_crop_study.py prepare|train|judge [--work runs/aligned]
    python scripts/aligned_crop_study.py export --out .dev/aligned   # for a GPU machine:
    # then train_on_device.py --data /tmp/data/aligned/genki4k-train --data .../smilesmiled
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ensemble_study import AUDITS, SHIPPED, judged  # noqa: E402  (a sibling study script)

SIZE = 64
EYES = (33, 263)  # the subject's right and left outer eye corners


def eye_corners(mesh, crop: np.ndarray) -> np.ndarray:
    """(2, 2) outer eye corners (33, 263) in the crop's pixels, as the door's mesh finds them."""
    from happyhouse.daemon.geometry import MESH_INPUT, MESH_PAD

    side = crop.shape[0]
    border = int(round(side * MESH_PAD))
    xy = mesh.points(crop, MESH_PAD)[list(EYES), :2]
    return xy * ((side + 2 * border) / MESH_INPUT) - border


def aligned(image_rgb: np.ndarray, eyes: np.ndarray, canon: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The size x size crop of ``image_rgb`` with the eyes level at the canonical framing.

    ``canon``: (eye distance, eye-centre x, eye-centre y) as fractions of the side.
    """
    import cv2

    right, left = np.asarray(eyes, np.float64)
    span = left - right
    distance = float(np.hypot(*span))
    if not np.isfinite(distance) or distance < 1e-3:
        return cv2.resize(image_rgb, (size, size), interpolation=cv2.INTER_AREA)
    scale = canon[0] * size / distance
    cos, sin = span / distance
    rot = scale * np.array([[cos, sin], [-sin, cos]])
    centre = (right + left) / 2.0
    shift = np.array([canon[1] * size, canon[2] * size]) - rot @ centre
    matrix = np.hstack([rot, shift[:, None]])
    return cv2.warpAffine(np.ascontiguousarray(image_rgb), matrix, (size, size), flags=cv2.INTER_AREA
                          if scale < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def canonical(eyes: np.ndarray, side: int) -> np.ndarray:
    span = eyes[:, 1] - eyes[:, 0]
    centre = eyes.mean(axis=1)
    return np.array([np.median(np.hypot(span[:, 0], span[:, 1])) / side,
                     np.median(centre[:, 0]) / side, np.median(centre[:, 1]) / side])


def data_paths() -> List[Path]:
    root = Path(os.environ.get("HAPPYHOUSE_DATA", "../shared/datasets"))
    return [root / "genki4k-train", root / "smilesmiled"]


#: where the canonical framing comes from: the training faces of one source. ``genki``
#: (GENKI-4K, crops like the gate's boxes) was the first study's; SMILEsmileD crops its faces
#: tighter, so under GENKI's framing 82% of the training faces (all of SMILEsmileD) had ~39%
#: of their aligned crop filled with mirrored border, which a door's frame never has.
#: ``smile`` takes SMILEsmileD's framing: no border for them, GENKI's faces cut from inside.
FRAMINGS = {"genki": "genki4k-train", "smile": "smilesmiled"}


def prepare(work: Path, framing: str = "genki") -> None:
    import cv2

    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.facegate import FaceGate
    from happyhouse.daemon.preprocess import Preprocess, crop_box, prepare_frame
    from happyhouse.train.data import load_training_data
    from happyhouse.train.framing import on_canvas
    from happyhouse.train.geometry import door_shift, stage_beside, validation_mask
    from happyhouse.train.label_audit import model_contract

    mesh = stage_beside(SHIPPED)[0].mesh
    data = load_training_data([str(p) for p in data_paths()], model_contract(SHIPPED).geometric())
    in_val = validation_mask(data.ids, SHIPPED.parent / "split.json")
    eyes = np.stack([eye_corners(mesh, c) for c in data.images])
    source = np.array([FRAMINGS[framing] in i for i in data.ids]) & ~in_val
    canon = canonical(eyes[source], SIZE)
    print("canonical framing (eye distance, centre x, centre y) / side:", np.round(canon, 3))
    faces = np.stack([aligned(c, e, canon) for c, e in zip(data.images, eyes)])
    val = np.flatnonzero(in_val)
    shifted = door_shift(data.images[val])
    copies = {"validation": faces[val],
              "door-shifted": np.stack([aligned(c, eye_corners(mesh, c), canon) for c in shifted])}
    gate = FaceGate.from_config(load_config(None, {"latch.gpio": "mock"}))
    box_spec = Preprocess(crop="face", margin=0.0, size=SIZE)
    for name, source in (("door-framed", data.images[val]), ("door-framed door-shifted", shifted)):
        out = []
        for face in source:
            canvas = on_canvas(face)
            box = gate.find(canvas)
            if box is None:
                continue  # not in the framed copies, as in label_audit.door_copies
            x0, y0, x1, y1 = crop_box(canvas.shape, box, 0.0)
            crop = prepare_frame(canvas, (x0, y0, x1 - x0, y1 - y0), box_spec)
            e = eye_corners(mesh, crop) * ((x1 - x0) / SIZE) + (x0, y0)
            out.append(aligned(cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB), e, canon))
        copies[name] = np.stack(out)
    work.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(work / "aligned.npz", faces=faces, in_val=in_val, canon=canon,
                        **{f"copy:{k}": v for k, v in copies.items()})
    for k, v in copies.items():
        print(k, v.shape)


def train(work: Path, epochs: int, init: Optional[Path] = SHIPPED, out: str = "model",
          time_limit: Optional[float] = None, label_audits: Sequence[Path] = (),
          seed: int = 1) -> None:
    from happyhouse.train.data import load_training_data
    from happyhouse.train.label_audit import model_contract
    from happyhouse.train.trainer import TrainConfig, apply_label_audits, train_split

    stored = np.load(work / "aligned.npz")
    data = load_training_data([str(p) for p in data_paths()], model_contract(SHIPPED).geometric())
    data = replace(data, images=stored["faces"])
    in_val = stored["in_val"]
    # from scratch: the shipped model's parent recipe (CLAHE, door-strong, lr 2e-3 with
    # warm-up and cosine); else a fine-tune of ``init`` (BN trained, lr 5e-4)
    recipe = (dict(arch="default", normalize="clahe", lr=2e-3, patience=20) if init is None
              else dict(init=init, freeze_bn=False, lr=5e-4, patience=epochs))
    cfg = TrainConfig(data=[str(p) for p in data_paths()], out=work / out, mirror_average=True,
                      augment="door-strong", epochs=epochs, seed=seed, split_seed=1, workers=2,
                      time_limit=time_limit, label_audits=tuple(label_audits), **recipe,
                      extra_meta={"study": "aligned crops (scripts/aligned_crop_study.py)",
                                  "canonical_framing": stored["canon"].tolist()})
    train_part = np.flatnonzero(~in_val)
    if label_audits:  # the training part's audited labels, as happyhouse-train --label-audit
        cfg, data, train_part = apply_label_audits(cfg, data, train_part)
    train_split(cfg, data, train_part, np.flatnonzero(in_val))


def export(work: Path, out: Path, quality: int = 92) -> None:
    """The aligned crops as class-folder datasets under ``out`` (same source/class/file names,
    so the general split and the label audits still name them), JPEG: small enough to travel
    to a GPU machine with ``scripts/prepare_device_run.sh``-style packing and train there."""
    import cv2

    from happyhouse.train.data import load_training_data
    from happyhouse.train.audits import face_name
    from happyhouse.train.label_audit import model_contract

    faces = np.load(work / "aligned.npz")["faces"]
    data = load_training_data([str(p) for p in data_paths()], model_contract(SHIPPED).geometric())
    for image_id, face in zip(data.ids, faces):
        path = out / face_name(image_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    print(f"{len(faces)} aligned faces under {out}")


def by_source_auc(names: Sequence[str], labels: np.ndarray, scores: np.ndarray, audit) -> dict:
    """ROC AUC within each source, by the datasets' labels and the audited ones."""
    from happyhouse.daemon.roc import roc_auc
    from happyhouse.train.audits import apply_audit

    def auc(y, s):  # None where a source has one class only
        value = roc_auc(y, s)
        return None if value is None else round(float(value), 4)

    audited, keep = apply_audit(names, labels, audit)
    source = np.array([n.split("/")[0] for n in names])
    return {str(s): {"n": int(np.sum(source == s)),
                     "auc": auc(labels[source == s], scores[source == s]),
                     "auc_audited": auc(audited[(source == s) & keep], scores[(source == s) & keep])}
            for s in sorted(set(source))}


def judge(work: Path, cache: Path, out: Optional[Path], model: str = "model") -> None:
    from happyhouse.daemon.geometry import fuse, logit, sigmoid
    from happyhouse.train.audits import load_audits
    from happyhouse.train.label_audit import door_copies, model_contract, split_faces
    from happyhouse.train.trainer import load_model, predict

    stored = np.load(work / "aligned.npz")
    geometry = dict(np.load(cache / "geometry.npz"))
    box_probs = dict(np.load(cache / "models_general_model.npz"))
    names, labels, crops = split_faces(SHIPPED, data_paths())
    audit = load_audits([Path(a) for a in AUDITS])
    which = {"validation": np.arange(len(crops))}
    which.update({k: w for k, (w, _) in door_copies(crops).items()})  # the same gate, same faces
    model_path = work / model / "model.keras"
    net, spec = load_model(model_path), model_contract(model_path)
    rows = {}
    probs = {c: predict(net, stored[f"copy:{c}"], spec) for c in which}
    for c in which:
        if len(probs[c]) != len(which[c]):
            raise SystemExit(f"{c}: {len(probs[c])} aligned faces against {len(which[c])} box crops")
    copies = {c: (w, None) for c, w in which.items()}
    fused_box = {c: fuse(box_probs[c], geometry[c], (0.7, 0.3)) for c in which}
    fused_aligned = {c: fuse(probs[c], geometry[c], (0.7, 0.3)) for c in which}
    rows["shipped, box crops"] = judged(names, labels, copies, fused_box, audit)
    rows[f"aligned crops ({model})"] = judged(names, labels, copies, fused_aligned, audit)
    rows[f"aligned crops ({model}), classifier alone"] = judged(names, labels, copies, probs, audit)
    rows["shipped, box crops, classifier alone"] = judged(names, labels, copies, box_probs, audit)
    # both views at once (a measurement: two classifiers break the bundle's size goal)
    rows[f"aligned ({model}) + box crops, mean classifier logit"] = judged(names, labels, copies, {
        c: fuse(sigmoid((logit(probs[c]) + logit(box_probs[c])) / 2), geometry[c], (0.7, 0.3))
        for c in which}, audit)
    for name, row in rows.items():
        print(f"{row['validation']['auc']:.4f} {row['validation']['auc_audited']:.4f} "
              f"{row['validation']['recall_audited']:.3f} | doors {row['door_mean_auc']:.4f} "
              f"{row['door_mean_auc_audited']:.4f}  {name}")
    # where a validation difference comes from: the sources frame their faces, and base their
    # labels, differently (GENKI-4K 54% happy, SMILEsmileD 28%), so each is scored on its own
    by_source = {"shipped, box crops": by_source_auc(names, labels, fused_box["validation"], audit),
                 f"aligned crops ({model})": by_source_auc(names, labels, fused_aligned["validation"],
                                                           audit)}
    for name, row in by_source.items():
        print("validation by source, fused:", name, row)
    rows = {**rows, "validation_by_source": by_source}
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"canonical_framing": stored["canon"].round(4).tolist(),
                                   "rows": rows}, indent=1) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=("prepare", "train", "judge", "export"))
    p.add_argument("--out", type=Path, help="export: the folder for the class-folder datasets")
    p.add_argument("--work", type=Path, default=Path("runs/aligned"))
    p.add_argument("--cache", type=Path, default=Path("runs/ensemble"))
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--json", type=Path)
    p.add_argument("--init", type=Path, default=SHIPPED, help="train: the model to fine-tune")
    p.add_argument("--scratch", action="store_true", help="train: from scratch instead")
    p.add_argument("--time-limit", type=float, help="train: stop after this many seconds")
    p.add_argument("--framing", choices=sorted(FRAMINGS), default="genki",
                   help="prepare: whose training faces set the canonical framing")
    p.add_argument("--seed", type=int, default=1, help="train: the training seed (the split stays)")
    p.add_argument("--label-audit", type=Path, action="append", default=[],
                   help="train: a training-label audit to apply (repeatable)")
    p.add_argument("--model", default="model", help="the folder under --work to train into or judge")
    args = p.parse_args(argv)
    if args.step == "prepare":
        prepare(args.work, args.framing)
    elif args.step == "train":
        train(args.work, args.epochs, None if args.scratch else args.init, args.model,
              args.time_limit, args.label_audit, args.seed)
    elif args.step == "export":
        export(args.work, args.out or args.work / "faces")
    else:
        judge(args.work, args.cache, args.json, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())

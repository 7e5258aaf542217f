"""Study O: the shipped door on faces whose mouth is covered (a scarf, a hand, a mask).

A field probe found not-smiling faces with the lower face covered judged HAPPY. This
measures it on the shipped model's validation faces (held out from the classifier and
the geometry head): each face on a door-sized frame, bare and with the lower part
covered by a flat colour, through the door's own pipeline (gate, crop, classifier,
geometry, the bundle's threshold). A not-smiling face judged HAPPY is a false open; a
covered smile judged HAPPY opens for a smile no one can see. Measurement only: nothing
here is tuned, and no Happy House frame is read.

    python scripts/covered_mouth_study.py --data ../shared/datasets \\
        --split models/general/split.json --json reports/covered-mouth/covered-mouth.json

Study P (the covered-mouth retrain, ``reports/README.md``) adds one cover outside the
retrain's training family of synthetic occluders: "face texture", the lower part replaced
by the top 30% (forehead, hair) of the next validation face, resized: real skin and hair
where the mouth was.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

#: what hides the mouth: a flat colour (BGR), nothing (None) or another face's texture
Cover = Union[None, Tuple[int, int, int], str]
#: the covered part of the face image: rows from 62.5% down, the middle 75% of the width
COVER_TOP, COVER_SIDE = 0.625, 0.125
#: the texture cover: the top 30% of the next face (forehead and hair) over the lower face
TEXTURE, TEXTURE_ROWS = "face texture", 0.30
#: flat covers over the lower face (BGR): what a scarf, a hand or a mask shows a camera
COVERS: Dict[str, Cover] = {
    "none": None, "dark scarf": (30, 30, 30), "grey": (110, 110, 110),
    "white mask": (235, 235, 235), "skin-tone hand": (120, 160, 210), TEXTURE: TEXTURE}
FACE_SIDE, FACE_AT, FRAME_SIZE, BACKGROUND = 220, (220, 120), (640, 480), 110


def cover(face_bgr: np.ndarray, colour: Cover, donor: Optional[np.ndarray] = None) -> np.ndarray:
    """``face_bgr`` with its lower middle painted ``colour`` (a copy; None: unchanged), or
    for :data:`TEXTURE` filled with the top rows of ``donor`` (another face) resized."""
    import cv2

    out = face_bgr.copy()
    if colour is None:
        return out
    h, w = out.shape[:2]
    rows = slice(int(round(h * COVER_TOP)), h)
    cols = slice(int(round(w * COVER_SIDE)), int(round(w * (1 - COVER_SIDE))))
    if colour == TEXTURE:
        if donor is None:
            raise ValueError("the face-texture cover needs a donor face")
        top = donor[:max(1, int(round(donor.shape[0] * TEXTURE_ROWS)))]
        size = (cols.stop - cols.start, rows.stop - rows.start)
        out[rows, cols] = cv2.resize(top, size, interpolation=cv2.INTER_LINEAR)
    else:
        out[rows, cols] = colour
    return out


def door_frame(face_bgr: np.ndarray) -> np.ndarray:
    """The face as a door camera frames a visitor: 220 px on a 640x480 plain frame."""
    import cv2

    width, height = FRAME_SIZE
    frame = np.full((height, width, 3), BACKGROUND, np.uint8)
    x, y = FACE_AT
    frame[y:y + FACE_SIDE, x:x + FACE_SIDE] = cv2.resize(face_bgr, (FACE_SIDE, FACE_SIDE),
                                                         interpolation=cv2.INTER_LINEAR)
    return frame


def validation_faces(split: Path, data: Path) -> List[Tuple[Path, int]]:
    """(file, label) of the split's validation faces, found under ``data`` by their
    dataset-relative path (the split names them as the training machine saw them)."""
    ids = json.loads(split.read_text(encoding="utf-8"))["validation_ids"]
    faces = []
    for face_id in ids:
        parts = Path(face_id).parts
        source, label = parts[-3], parts[-2]
        faces.append((data / source / label / parts[-1], int(label == "happy")))
    return faces


def tally(observe, faces: Sequence[Tuple[np.ndarray, int]],
          covers: Mapping[str, Cover] = COVERS) -> dict:
    """{cover: {"smiling"|"not_smiling": {"faces", "gated", "happy"}}} over ``faces``
    ((BGR image, label)); ``observe(frame)`` is the door's pipeline. The texture cover of
    face i comes from face i + 1 (the last from the first)."""
    counts = {name: {kind: {"faces": 0, "gated": 0, "happy": 0}
                     for kind in ("smiling", "not_smiling")} for name in covers}
    for i, (image, label) in enumerate(faces):
        kind = "smiling" if label else "not_smiling"
        donor = faces[(i + 1) % len(faces)][0]
        for name, colour in covers.items():
            obs = observe(door_frame(cover(image, colour, donor)))
            row = counts[name][kind]
            row["faces"] += 1
            row["gated"] += int(obs.face is not None)
            row["happy"] += int(bool(obs.happy))
    for per_kind in counts.values():
        for row in per_kind.values():
            row["happy_of_gated"] = round(row["happy"] / row["gated"], 4) if row["gated"] else None
    return counts


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="covered_mouth_study", description=__doc__.split("\n\n")[1])
    p.add_argument("--data", type=Path, required=True, help="the shared datasets folder")
    p.add_argument("--split", type=Path, default=Path("models/general/split.json"))
    p.add_argument("--model", help="bundle to judge (default: the shipped one)")
    p.add_argument("--limit", type=int, help="at most this many validation faces (a quick look)")
    p.add_argument("--json", type=Path, help="write the figures here")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    import cv2

    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.pipeline import Pipeline

    args = parser().parse_args(argv)
    faces = validation_faces(args.split, args.data)[:args.limit]
    pipeline = Pipeline.from_config(load_config(None, {"model.bundle": args.model}))
    images = [(cv2.imread(str(path)), label) for path, label in faces]
    counts = tally(pipeline.observe_image, [(img, lab) for img, lab in images if img is not None])
    report = {
        "what": "a door bundle on the general validation faces with the lower face covered "
                "(studies O and P)",
        "faces": "validation split of the shipped general model (held out from the classifier "
                 "and the geometry head)",
        "frame": f"face resized to {FACE_SIDE} px at {FACE_AT} on a {FRAME_SIZE[0]}x{FRAME_SIZE[1]} "
                 f"frame of grey {BACKGROUND}",
        "cover": f"rows from {COVER_TOP:.1%} of the face down, the middle "
                 f"{1 - 2 * COVER_SIDE:.0%} of its width, flat BGR colour, or for "
                 f"{TEXTURE!r} the top {TEXTURE_ROWS:.0%} of the next face resized",
        "bundle_sha256": pipeline.model_sha256, "threshold": pipeline.threshold,
        "covers": {name: list(colour) if isinstance(colour, tuple) else colour
                   for name, colour in COVERS.items()},
        "counts": counts}
    text = json.dumps(report, indent=1) + "\n"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

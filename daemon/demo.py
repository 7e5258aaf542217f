"""A demo door: folders of door-camera frames to watch the daemon open (and not).

The Happy House frames are dark and blurred, and the shipped general model
rarely opens for them (see ``happyhouse-eval``), so a newcomer who replays
them sees the latch move about once in 150 frames. This writes two folders from a class-folder
dataset of face crops (GENKI-4K, SMILEsmileD)::

    OUT/smiles/     the first N faces labelled happy, each in a door-sized frame
    OUT/no-smiles/  the first N faces labelled not happy, the same way

Faces are taken in file-name order by their label alone (not picked by the
model), scaled to ``--face`` pixels and put in the middle of a plain
``camera.width`` x ``camera.height`` frame, the size the door camera
delivers. Replay them with the mocked latch::

    happyhouse-daemon --gpio mock --source OUT/smiles      # opens: "unlock #1 (smile)"
    happyhouse-daemon --gpio mock --source OUT/no-smiles   # stays locked

Exit codes: 0 written, 2 a fixable error (bad dataset, unwritable folder).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .errors import DataError
from .filesafety import a_path

#: the face's side in the frame: a person about a metre from a 640x480 door camera
FACE_SIDE = 220
#: the backdrop's grey level (a plain wall)
BACKDROP = 96


def face_in_door_frame(face_rgb: np.ndarray, side: int = FACE_SIDE, width: int = 640,
                       height: int = 480) -> np.ndarray:
    """A face crop (RGB) centred in a plain BGR door-camera frame, the face ``side`` px tall."""
    import cv2

    frame = np.full((height, width, 3), BACKDROP, np.uint8)
    face = cv2.resize(cv2.cvtColor(np.ascontiguousarray(face_rgb), cv2.COLOR_RGB2BGR),
                      (side, side), interpolation=cv2.INTER_LINEAR)
    y, x = (height - side) // 2, (width - side) // 2
    frame[y:y + side, x:x + side] = face
    return frame


def write_demo(data: str, out: str, count: int = 12, side: int = FACE_SIDE,
               size: Tuple[int, int] = (640, 480)) -> Tuple[List[Path], List[int]]:
    """Write ``out/smiles`` and ``out/no-smiles``, each whole or not at all (made beside
    them, then swapped in: a run killed part-way left new frames beside old ones); returns
    the two folders and how many frames each holds."""
    import tempfile

    import cv2

    from .datasets import load_class_folders
    from .filesafety import check_creatable, make_folder, replace_folders

    if not 1 <= count <= 1000:
        raise DataError(f"--count must be 1 to 1000, got {count}")
    check_creatable(out, "--out")  # a wrong path is one line before the faces are read
    dataset = load_class_folders(data, size=None)
    root = make_folder(Path(out).expanduser(), "--out")
    for name in ("smiles", "no-smiles"):  # replaced whole below: never a file of that name
        if (root / name).exists() and not (root / name).is_dir():
            raise DataError(f"--out's folder {root / name} is a file, not a folder: move it "
                            f"away or give another path")
    staging = Path(tempfile.mkdtemp(prefix=".demo.", dir=root))
    moves, counts = [], []
    try:
        for name, label in (("smiles", 1), ("no-smiles", 0)):
            chosen = np.flatnonzero(dataset.labels == label)[:count]
            if len(chosen) == 0:
                raise DataError(f"{data} has no {'happy' if label else 'not_happy'} images")
            folder = make_folder(staging / name, "--out's folder")
            for n, index in enumerate(chosen):
                frame = face_in_door_frame(dataset.images[index], side, *size)
                if not cv2.imwrite(str(folder / f"{n:03d}.png"), frame):
                    raise DataError(f"cannot write {root / name / f'{n:03d}.png'}")
            moves.append((folder, root / name))
            counts.append(len(chosen))
        try:
            replace_folders(moves)
        except OSError as exc:
            raise DataError(f"cannot write {root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [dest for _, dest in moves], counts


#: the name its one-line errors and Ctrl-C carry (the shared ``happyhouse-...`` form)
PROG = "happyhouse-demo"


def main(argv: Optional[List[str]] = None) -> int:
    from .cli_errors import run_main

    parser = argparse.ArgumentParser(prog="python -m happyhouse.daemon.demo",
                                     description=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=a_path, required=True, metavar="ROOT",
                        help="class-folder dataset of face crops (ROOT/happy, ROOT/not_happy), "
                             "e.g. ../shared/datasets/genki4k-train")
    parser.add_argument("--out", type=a_path, required=True, metavar="DIR", help="where the two folders go")
    parser.add_argument("--count", type=int, default=12, help="frames per folder (default 12)")
    parser.add_argument("--face", type=int, default=FACE_SIDE, metavar="PX",
                        help=f"face size in the 640x480 frame (default {FACE_SIDE})")
    args = parser.parse_args(argv)
    return run_main(PROG, lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    if not 64 <= args.face <= 480:
        raise DataError(f"--face must be 64 to 480 px, got {args.face}")
    (smiles, others), (n_smiles, n_others) = write_demo(args.data, args.out, args.count,
                                                         args.face)
    # the counts written: --count 500 of a folder of 20 said "wrote 500"
    sys.stdout.write(f"wrote {n_smiles} door frames of smiling faces to {smiles} and "
                     f"{n_others} of non-smiling faces to {others}\n"
                     f"  happyhouse-daemon --gpio mock --source {smiles}      # opens\n"
                     f"  happyhouse-daemon --gpio mock --source {others}   # stays locked\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

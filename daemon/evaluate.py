"""``happyhouse-eval``: score a labelled dataset with the exact on-device pipeline.

Face gate, crop, int8 model, threshold: the :class:`~.pipeline.Pipeline` the
door runs (no TensorFlow), over a dataset in either format
(:func:`~.datasets.load_dataset`). A frame where the gate finds no face is
not opened: it counts as a negative prediction (and in ``no_face``).

What the gate sees depends on the data (``--gate``):

* ``auto`` (default): a course HDF5 (whole door-camera frames, like Happy
  House) goes through the gate after being scaled up to ``--source-size``
  (default 640x480) as if the door camera had captured it; a class-folder
  dataset (GENKI-4K, SMILEsmileD) already holds face crops, so each image is
  taken as its own face box (the gate is skipped: a tight 64x64 face crop
  blown up to 640x480 is not a door-camera frame) and only crop, model and
  threshold run.
* ``on``: every image is scaled to ``--source-size`` and gated.
* ``off``: every image is its own face box (crop-is-face).

``--json`` prints one object: ``n``, ``accuracy``, ``tp``, ``fp``, ``tn``,
``fn``, ``no_face``, ``false_open_rate`` (opened for someone not smiling /
all not-smiling), and more. Exit codes: 0 done, 2 a fixable error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import ConfigError

log = logging.getLogger(__name__)
GATE_MODES = ("auto", "on", "off")


def parse_size(text: str) -> Tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--source-size must look like 640x480, got {text!r}") from None
    if not (64 <= width <= 4096 and 48 <= height <= 4096):
        raise ConfigError(f"--source-size {text} is out of range (64x48 to 4096x4096)")
    return width, height


def gated(path: str, mode: str) -> bool:
    """Does this dataset go through the face gate? (See the module doc.)"""
    if mode != "auto":
        return mode == "on"
    return Path(path).suffix.lower() in (".h5", ".hdf5")


def evaluate(pipeline, images_rgb: np.ndarray, labels: np.ndarray, gate: bool = True,
             source_size: Tuple[int, int] = (640, 480)) -> dict:
    """Confusion counts and rates of ``pipeline`` on uint8 RGB images with 0/1 labels."""
    from .sources import to_door_frame

    width, height = source_size
    predictions, scores, faces = [], [], 0
    gate_ms, model_ms = [], []
    for index, image in enumerate(images_rgb):
        if gate:
            frame = to_door_frame(image, width, height)
            obs = pipeline.observe_image(frame, seq=index)
        else:
            obs = pipeline.observe_crop(image[..., ::-1], seq=index)
        faces += obs.face is not None
        predictions.append(bool(obs.happy))
        scores.append(obs.score)
        if "gate" in obs.stages_ms:
            gate_ms.append(obs.stages_ms["gate"])
        if "model" in obs.stages_ms:
            model_ms.append(obs.stages_ms["model"])
    return summarize(np.asarray(predictions), np.asarray(labels), faces, gate_ms, model_ms)


def summarize(pred: np.ndarray, labels: np.ndarray, faces: int,
              gate_ms: Sequence[float] = (), model_ms: Sequence[float] = ()) -> dict:
    labels = labels.astype(bool)
    counts = rates(int(np.sum(pred & labels)), int(np.sum(pred & ~labels)),
                   int(np.sum(~pred & ~labels)), int(np.sum(~pred & labels)),
                   int(len(labels)) - faces)
    counts["gate_ms_mean"] = round(float(np.mean(gate_ms)), 3) if len(gate_ms) else None
    counts["model_ms_mean"] = round(float(np.mean(model_ms)), 3) if len(model_ms) else None
    return counts


def rates(tp: int, fp: int, tn: int, fn: int, no_face: int) -> dict:
    """The report's numbers from confusion counts (no face = predicted negative)."""
    n = tp + fp + tn + fn
    negatives, positives = tn + fp, tp + fn
    return {
        "n": n, "accuracy": round((tp + tn) / n, 4) if n else None,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "no_face": no_face, "face_found_rate": round((n - no_face) / n, 4) if n else None,
        "false_open_rate": round(fp / negatives, 4) if negatives else 0.0,
        "recall": round(tp / positives, 4) if positives else None,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="happyhouse-eval",
        description="Evaluate a model bundle with the door's own pipeline (face gate, crop, "
                    "int8 model, threshold; no TensorFlow) on a labelled dataset: a class-folder "
                    "root (happy/, not_happy/) or a course HDF5 file.",
        epilog=__doc__.split("What the gate sees", 1)[1].join(["What the gate sees", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", metavar="BUNDLE", help="bundle folder (default: shipped model)")
    parser.add_argument("--data", metavar="PATH", required=True, action="append",
                        help="dataset (repeat for several; each is reported and summed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--threshold", type=float, help="override the bundle's threshold")
    parser.add_argument("--source-size", default="640x480", metavar="WxH",
                        help="whole frames are scaled to this camera size before the gate")
    parser.add_argument("--gate", choices=GATE_MODES, default="auto",
                        help="auto: gate whole-frame HDF5 data, treat class folders as face crops")
    parser.add_argument("--config", metavar="PATH", help="daemon config for [face] and [model]")
    parser.add_argument("--threads", type=int, help="TFLite threads")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N images per class/file")
    return parser


def run(args) -> dict:
    from .config import load_config
    from .datasets import load_dataset
    from .pipeline import Pipeline

    size = parse_size(args.source_size)
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    cfg = load_config(args.config, {"model.bundle": args.model, "model.threshold": args.threshold,
                                    "model.threads": args.threads},
                      required=args.config is not None)
    pipeline = Pipeline.from_config(cfg)
    report = {"model": str(pipeline.bundle.path), "model_sha256": pipeline.model_sha256,
              "runtime": pipeline.runtime, "threshold": pipeline.threshold,
              "face_gate": pipeline.gate.description, "source_size": f"{size[0]}x{size[1]}",
              "datasets": []}
    totals: List[dict] = []
    for path in args.data:
        use_gate = gated(path, args.gate)
        started = time.perf_counter()
        data = load_dataset(path, size=None if use_gate else pipeline.preprocess.size,
                            limit=args.limit)
        part = evaluate(pipeline, data.images, data.labels, use_gate, size)
        part.update(data=str(path), gate=use_gate, skipped=len(data.skipped),
                    seconds=round(time.perf_counter() - started, 2))
        report["datasets"].append(part)
        totals.append(part)
    overall = rates(*(sum(p[k] for p in totals) for k in ("tp", "fp", "tn", "fn", "no_face")))
    if len(totals) == 1:
        overall.update(gate_ms_mean=totals[0]["gate_ms_mean"],
                       model_ms_mean=totals[0]["model_ms_mean"])
    report.update(overall)
    return report


def _human(report: dict) -> str:
    lines = [f"model {report['model']} (sha256 {report['model_sha256'][:16]}) on "
             f"{report['runtime']}, threshold {report['threshold']:.3f}, gate {report['face_gate']}"]
    for part in report["datasets"]:
        how = f"gated at {report['source_size']}" if part["gate"] else "images are face crops"
        lines.append(f"  {part['data']} ({how}): n {part['n']}, accuracy {part['accuracy']:.4f}, "
                     f"tp {part['tp']} fp {part['fp']} tn {part['tn']} fn {part['fn']}, "
                     f"no face {part['no_face']}, false opens {part['false_open_rate']:.2%}")
    lines.append(f"overall: n {report['n']}, accuracy {report['accuracy']:.4f}, "
                 f"false open rate {report['false_open_rate']:.2%}, no face {report['no_face']}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    from .cli_errors import run_main

    return run_main("happyhouse-eval", lambda: _evaluate(argv))


def _evaluate(argv: Optional[List[str]]) -> int:
    args = build_parser().parse_args(argv)
    from .journal import setup_logging

    setup_logging("WARNING")  # progress stays quiet; the report goes to stdout
    report = run(args)
    sys.stdout.write(json.dumps(report) + "\n" if args.json else _human(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

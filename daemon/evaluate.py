"""``happyhouse-eval``: score a labelled dataset with the exact on-device pipeline.

Face gate, crop, int8 model, threshold: the :class:`~.pipeline.Pipeline` the
door runs (no TensorFlow), over a dataset in either format
(:func:`~.datasets.load_dataset`). A frame where the gate finds no face is
not opened: it counts as a negative prediction (and in ``no_face``).

What the gate sees depends on the data (``--gate``):

* ``auto`` (default): whole door-camera frames go through the gate after
  being scaled to ``--source-size`` (default: the camera size of ``--config``,
  else 640x480) as if the door camera had captured them: a course HDF5 (like
  Happy House) and a house's own frames (a folder ``--collect`` or the door's
  page wrote: each frame beside its JSON sidecar). Any other class-folder
  dataset (GENKI-4K, SMILEsmileD) already holds face crops, so each image is
  taken as its own face box (the gate is skipped: a tight 64x64 face crop
  blown up to 640x480 is not a door-camera frame) and only crop, model and
  threshold run.
* ``on``: every image is scaled to ``--source-size`` and gated.
* ``off``: every image is its own face box (crop-is-face).

Why a model scores as it does:

* ``roc_auc``: how well the scores rank smiles above non-smiles, whatever the
  threshold (1.0 perfect, 0.5 chance), pooled over the frames where a face
  was found (a frame without one has no score; it counts as kept out above).
* ``--per-image FILE``: a CSV row per image: id, label, the face box (in the
  frame the gate saw: 640x480 for scaled whole frames), score (empty: no
  face) and the door's decision (``open``, ``locked``, ``no face``); for a
  bundle with a geometry stage also the classifier's and the geometry's scores.
* ``--plot DIR``: ``roc.png`` and ``misses.png`` (the wrong decisions, false
  opens first, each tile labelled with its id, label and score). Needs
  matplotlib (a desktop extra, not installed on the Pi).

``--json`` prints one object: ``n``, ``accuracy``, ``tp``, ``fp``, ``tn``,
``fn``, ``no_face``, ``false_open_rate`` (opened for someone not smiling /
all not-smiling), ``roc_auc``, and more. Exit codes: 0 done, 2 a fixable error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ConfigError, DataError, ModelError
from .filesafety import a_path
from .logtext import decimal
from .preprocess import Box
from .roc import roc_auc

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
    """Does this dataset go through the face gate? (See the module doc.) A house's own
    frames did not: each whole frame was scored as a face crop, and a house bundle checked
    that way showed no false opens where the door, gating, had one."""
    from .collect import holds_collected_frames

    if mode != "auto":
        return mode == "on"
    return Path(path).suffix.lower() in (".h5", ".hdf5") or holds_collected_frames(path)


def observe_whole_frame(pipeline, image_rgb: np.ndarray,
                        source_size: Tuple[int, int] = (640, 480), seq: int = 0,
                        timestamp: Optional[float] = None):
    """One whole picture as the door camera would deliver it: scaled to ``source_size``
    (:func:`~.preprocess.to_door_frame`), then gated, cropped and scored.

    Returns ``(observation, door_frame_bgr)``. A picture replayed as a camera (the service,
    ``--once``) is scaled the same way (:class:`~.sources.CameraSized`), so every tool gives
    the same verdict for the same picture.
    """
    from .preprocess import to_door_frame

    frame = to_door_frame(image_rgb, *source_size)
    return pipeline.observe_image(frame, timestamp=timestamp, seq=seq), frame


def score_images(pipeline, images_rgb: np.ndarray, gate: bool = True,
                 source_size: Tuple[int, int] = (640, 480)) -> list:
    """The door's :class:`~.pipeline.Observation` of each uint8 RGB image, in order:
    whole frames through the gate (``gate``) or face crops (the gate skipped)."""
    observations = []
    for index, image in enumerate(images_rgb):
        if gate:
            observations.append(observe_whole_frame(pipeline, image, source_size, index)[0])
        else:
            observations.append(pipeline.observe_crop(image[..., ::-1], seq=index))
    return observations


def evaluate(pipeline, images_rgb: np.ndarray, labels: np.ndarray, gate: bool = True,
             source_size: Tuple[int, int] = (640, 480)) -> dict:
    """Confusion counts and rates of ``pipeline`` on uint8 RGB images with 0/1 labels."""
    return summarize_observations(score_images(pipeline, images_rgb, gate, source_size), labels)


def summarize_observations(observations: Sequence, labels: np.ndarray) -> dict:
    """:func:`summarize` of a list of observations (one per image, in label order), with
    ``no_face_smiles`` and the ROC AUC over the frames with a face (:func:`face_auc`)."""
    labels = np.asarray(labels)
    predictions = np.asarray([bool(obs.happy) for obs in observations], bool)
    faces = sum(obs.face is not None for obs in observations)
    gate_ms = [obs.stages_ms["gate"] for obs in observations if "gate" in obs.stages_ms]
    model_ms = [obs.stages_ms["model"] for obs in observations if "model" in obs.stages_ms]
    report = summarize(predictions, labels, faces, gate_ms, model_ms)
    report["no_face_smiles"] = int(sum(obs.face is None and bool(label)
                                       for obs, label in zip(observations, labels)))
    report["roc_auc"], report["roc_auc_frames"] = face_auc(observations, labels)
    return report


def face_auc(observations: Sequence, labels: np.ndarray) -> Tuple[Optional[float], int]:
    """ROC AUC of the scores of the frames where a face was found, and how many those are.

    A frame without a face has no score to rank: it is left out here (and counted as
    kept out in the confusion counts). None when the face frames hold only one class.
    """
    scored = [(float(obs.score), int(label)) for obs, label in zip(observations, labels)
              if obs.face is not None and obs.score is not None and np.isfinite(obs.score)]
    if not scored:
        return None, 0
    scores, truth = (np.asarray(v) for v in zip(*scored))
    auc = roc_auc(truth, scores)
    return (None if auc is None else round(auc, 4)), len(scored)


@dataclass(frozen=True)
class ImageResult:
    """What the door did with one image: a row of ``--per-image``, a tile of ``misses.png``."""

    id: str
    label: int  # 1 = smiling
    face: Optional[Box]  # in the frame the gate saw
    score: Optional[float]  # None: no face, nothing scored
    decision: str  # "open", "locked" or "no face"
    #: the two scores a fusing bundle combined into ``score`` (None: not fused, or no face)
    classifier: Optional[float] = None
    geometry: Optional[float] = None

    FIELDS = ("id", "label", "face_x", "face_y", "face_w", "face_h", "score", "decision",
              "classifier_score", "geometry_score")

    @classmethod
    def of(cls, image_id: str, label: int, obs) -> "ImageResult":
        decision = "no face" if obs.face is None else ("open" if obs.happy else "locked")
        score = None if obs.score is None else float(obs.score)
        parts = getattr(obs, "parts", None) or {}
        return cls(str(image_id), int(label), obs.face, score, decision,
                   parts.get("classifier"), parts.get("geometry"))

    @property
    def wrong(self) -> bool:
        return (self.decision == "open") != bool(self.label)

    def row(self) -> list:
        box = list(self.face) if self.face is not None else [""] * 4
        number = lambda v: "" if v is None else f"{v:.6f}"  # noqa: E731
        return [self.id, "happy" if self.label else "not_happy", *box, number(self.score),
                self.decision, number(self.classifier), number(self.geometry)]


def shown_with_printable_id(result: ImageResult) -> ImageResult:
    """``result`` with an id a font can draw: a file name that is not UTF-8 (``bad\\xff.jpg``)
    holds a lone surrogate, which matplotlib refuses; its byte is written out instead."""
    printable = os.fsencode(result.id).decode("utf-8", "backslashreplace")
    return result if printable == result.id else replace(result, id=printable)


def misses(results: Sequence[ImageResult]) -> List[int]:
    """Indices of the wrong decisions, the dangerous ones first: false opens (highest
    score first), then missed smiles (lowest score first; those without a face last)."""
    opens = [i for i, r in enumerate(results) if r.wrong and r.decision == "open"]
    missed = [i for i, r in enumerate(results) if r.wrong and r.decision != "open"]
    opens.sort(key=lambda i: -results[i].score)
    missed.sort(key=lambda i: (results[i].score is None, results[i].score or 0.0))
    return opens + missed


def write_per_image(path: str, results: Sequence[ImageResult]) -> Path:
    """The ``--per-image`` CSV (DataError when it cannot be written), written whole or not
    at all: a temporary file beside it is renamed into place, so a failure midway leaves
    no half a table that reads as the whole evaluation."""
    from .filesafety import make_folder, write_file_whole

    target = Path(path).expanduser()
    make_folder(target.parent, "--per-image's folder")
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(ImageResult.FIELDS)
    writer.writerows(r.row() for r in results)
    # an id is a file name as the file system gave it: one that is not UTF-8 (bad\xff.jpg,
    # copied from another machine) goes back out as its own bytes, so its row still
    # names that very file
    return write_file_whole(target, table.getvalue().encode("utf-8", "surrogateescape"),
                            "--per-image")


#: what --plot writes into its folder
PLOT_FILES = ("roc.png", "misses.png")


def check_outputs(args, bundle=None) -> None:
    """``--per-image`` and ``--plot`` checked before any image is scored: a wrong path is
    one line at the start, not a traceback (or nothing written) after the evaluation.

    Neither may lie in a class folder of ``--data``: roc.png and misses.png there would be
    loaded as faces of that class by the next evaluation or training on it. The CSV may not
    replace a file the evaluation reads (``--data``, ``--config``, the files of ``bundle``:
    ``--model`` or the config's, default the shipped one), and
    a ``--data`` source given twice is refused (its frames would count twice).
    """
    from .bundle import default_bundle_path
    from .datasets import CLASSES, repeated_source
    from .filesafety import check_creatable, check_file_creatable, inside, real_path

    class_folders = [Path(d).expanduser() / name for d in args.data
                     for name in CLASSES if (Path(d).expanduser() / name).is_dir()]

    def class_folder_holding(folder: Path) -> Optional[Path]:
        return next((c for c in class_folders if inside(folder, c)), None)

    repeated = repeated_source(args.data)
    if repeated is not None:
        raise DataError(f"--data {repeated} is given twice: its images would be counted twice")
    per_image, plot = getattr(args, "per_image", None), getattr(args, "plot", None)
    if per_image:
        target = check_file_creatable(per_image, "--per-image")
        holder = class_folder_holding(target.parent)
        if holder is not None:
            raise DataError(f"--per-image {target} is in the class folder {holder} of --data: "
                            f"write it outside the data")
        real = real_path(target)  # a link to an input is that input
        read = [("the --data file", d) for d in args.data]
        read += [("the --config file", getattr(args, "config", None))]
        for name, given in read:
            if given and Path(given).expanduser().is_file() and \
                    real_path(given) == real:
                raise DataError(f"--per-image {target} is {name} it reads: the CSV would "
                                f"replace it; give another file name")
        bundle = Path(bundle or default_bundle_path()).expanduser()
        bundle = bundle.parent if bundle.is_file() else bundle
        if bundle.is_dir() and inside(os.path.dirname(real), bundle):
            raise DataError(f"--per-image {target} is in the model bundle {bundle}: the CSV "
                            f"would change a sealed bundle; write it elsewhere")
    if plot:
        folder = Path(plot).expanduser()
        holder = class_folder_holding(folder)
        if holder is not None:
            raise DataError(f"--plot {folder} is in the class folder {holder} of --data: its "
                            f"roc.png and misses.png would be read as faces there; give a "
                            f"folder outside the data")
        check_creatable(folder, "--plot")
        for name in PLOT_FILES:  # a folder in their place failed at the end (a plot is
            check_file_creatable(folder / name, "--plot")  # renamed into place, never written in)


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
    from .config import number

    parser = argparse.ArgumentParser(
        prog="happyhouse-eval",
        description="Evaluate a model bundle with the door's own pipeline (face gate, crop, "
                    "int8 model, threshold; no TensorFlow) on a labelled dataset: a class-folder "
                    "root (happy/, not_happy/) or a course HDF5 file.",
        epilog=__doc__.split("What the gate sees", 1)[1].join(["What the gate sees", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", metavar="BUNDLE", type=a_path, help="bundle folder (default: shipped model)")
    parser.add_argument("--data", metavar="PATH", required=True, action="append", type=a_path,
                        help="dataset (repeat for several; each is reported and summed)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--threshold", type=number, help="override the bundle's threshold")
    parser.add_argument("--source-size", metavar="WxH",
                        help="whole frames are scaled to this camera size before the gate "
                             "(default: --config's [camera] width x height, else 640x480)")
    parser.add_argument("--gate", choices=GATE_MODES, default="auto",
                        help="auto: gate whole frames (HDF5, a folder --collect wrote), take "
                             "other class folders as face crops")
    parser.add_argument("--config", metavar="PATH", type=a_path, help="daemon config for [face] and [model]")
    parser.add_argument("--threads", type=int, help="TFLite threads")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N images per class/file")
    parser.add_argument("--per-image", metavar="FILE", type=a_path,
                        help="write a CSV row per image: id, label, face box, score, decision "
                             "(and the classifier's and the geometry stage's scores, for a bundle "
                             "that fuses them)")
    parser.add_argument("--plot", metavar="DIR", type=a_path,
                        help="write roc.png and misses.png (false opens first) here; "
                             "needs matplotlib (desktop)")
    return parser


def run(args) -> dict:
    """The report; with ``--per-image`` and ``--plot`` also their files."""
    from .config import load_config
    from .datasets import load_dataset, unreadable_line
    from .pipeline import Pipeline

    size = parse_size(args.source_size) if args.source_size else None
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    per_image, plot = getattr(args, "per_image", None), getattr(args, "plot", None)
    if plot:
        from .plots import pyplot

        pyplot()  # no matplotlib: say so now, not after the whole evaluation
    cfg = load_config(args.config, {"model.bundle": args.model, "model.threshold": args.threshold,
                                    "model.threads": args.threads},
                      required=args.config is not None)
    check_outputs(args, cfg.model_bundle or None)
    pipeline = Pipeline.from_config(cfg, door=False)  # measures; never drives the latch
    size = size or (cfg.camera_width, cfg.camera_height)  # the door's camera, as adapt scales
    report = {"model": str(pipeline.bundle.path), "model_sha256": pipeline.model_sha256,
              "runtime": pipeline.runtime,
              "runtime_version": pipeline.classifier.runtime_version, "threshold": pipeline.threshold,
              "face_gate": pipeline.gate.description, "source_size": f"{size[0]}x{size[1]}",
              "door_refuses_threshold": door_refusal(pipeline), "datasets": []}
    totals: List[dict] = []
    observations, labels, results, images = [], [], [], []
    for path in args.data:
        use_gate = gated(path, args.gate)
        started = time.perf_counter()
        data = load_dataset(path, size=None if use_gate else pipeline.preprocess.size,
                            limit=args.limit, frame_size=size)
        seen = score_images(pipeline, data.images, use_gate, size)
        part = summarize_observations(seen, data.labels)
        part.update(data=str(path), gate=use_gate, skipped=len(data.skipped),
                    unreadable=unreadable_line(data.skipped),
                    seconds=round(time.perf_counter() - started, 2))
        report["datasets"].append(part)
        totals.append(part)
        observations += seen
        labels += [int(v) for v in data.labels]
        results += [ImageResult.of(i, label, obs) for i, label, obs in zip(data.ids, data.labels, seen)]
        if plot:
            images += list(data.images)
    overall = rates(*(sum(p[k] for p in totals) for k in ("tp", "fp", "tn", "fn", "no_face")))
    if len(totals) == 1:
        overall.update(gate_ms_mean=totals[0]["gate_ms_mean"],
                       model_ms_mean=totals[0]["model_ms_mean"])
    overall["no_face_smiles"] = sum(p["no_face_smiles"] for p in totals)
    overall["roc_auc"], overall["roc_auc_frames"] = face_auc(observations, np.asarray(labels))
    report.update(overall)
    if plot:
        # drawn first, then the CSV, then the plots moved in: a Ctrl-C while drawing (the
        # slow part) left a new CSV and roc.png beside the last run's misses.png
        with _staged_plots(plot) as (folder, staging):
            _draw_plots(staging, results, images, pipeline.threshold)
            if per_image:
                report["per_image"] = str(write_per_image(per_image, results))
            report["plots"] = [str(folder / name) for name in PLOT_FILES]
            for name in PLOT_FILES:
                os.replace(staging / name, folder / name)
    elif per_image:
        report["per_image"] = str(write_per_image(per_image, results))
    return report


#: the hidden folder the plots are drawn in, and the age at which one is a leftover (of a
#: run killed with SIGKILL, which no cleanup reaches), not another evaluation's at work
DRAWING_PREFIX = ".drawing-"
STALE_DRAWING_SECONDS = 3600.0


@contextmanager
def _staged_plots(plot: str) -> Iterator[Tuple[Path, Path]]:
    """(the --plot folder, a hidden folder in it to draw into), the latter removed after."""
    from .filesafety import make_folder

    folder = make_folder(plot, "--plot")
    for stale in folder.glob(f"{DRAWING_PREFIX}*"):  # left by a run killed with SIGKILL
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_DRAWING_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=DRAWING_PREFIX) as staging:
        yield folder, Path(staging)


def _draw_plots(folder: Path, results: Sequence[ImageResult], images: Sequence[np.ndarray],
                threshold: float) -> None:
    from .plots import plot_misses, plot_roc

    scored = [r for r in results if r.score is not None]
    roc_name, misses_name = PLOT_FILES
    plot_roc(np.asarray([r.label for r in scored]), np.asarray([r.score for r in scored]),
             threshold, folder / roc_name, title=f"ROC over the {len(scored)} frames with a face")
    wrong = misses(results)
    plot_misses([images[i] for i in wrong], [shown_with_printable_id(results[i]) for i in wrong],
                folder / misses_name, threshold)


def _say_part(part: dict) -> List[str]:
    """One dataset's result in words: what the door would have done."""
    smiles, others = part["tp"] + part["fn"], part["tn"] + part["fp"]
    lines = [f"    the door would have opened for {part['tp']} of {smiles} smiles"
             + (f" ({part['no_face_smiles']} of the others: no face found)"
                if part.get("no_face_smiles") else ""),
             f"    it kept out {part['tn']} of {others} non-smiles: "
             + (f"{part['fp']} false open(s) ({part['false_open_rate']:.2%})" if part["fp"]
                else "no false opens"),
             f"    no face found in {part['no_face']} of {part['n']} frames (no face, no unlock)"]
    right = part["tp"] + part["tn"]
    lines.append(f"    right decision for {right} of {part['n']} ({part['accuracy']:.2%})")
    if part.get("roc_auc") is not None:
        lines.append(f"    ranking: ROC AUC {part['roc_auc']:.3f} over the {part['roc_auc_frames']} "
                     f"frames with a face (1.0: every smile scores above every non-smile; "
                     f"0.5: chance)")
    return lines


def door_refusal(pipeline) -> Optional[str]:
    """Why the door itself would refuse the threshold eval scores at (None: it would serve
    it). Eval measures at any threshold; said "what the door would have done" at one the
    service, --once and --check refuse, without a word."""
    from .evidence import require_threshold

    try:
        require_threshold(pipeline.bundle.meta, pipeline.threshold, "the threshold measured at")
    except ModelError as exc:
        return str(exc)
    return None


def _human(report: dict) -> str:
    lines = [f"model {report['model']} (sha256 {report['model_sha256'][:16]}) on "
             f"{report['runtime']} {report['runtime_version']}, threshold {decimal(report['threshold'])}, gate {report['face_gate']}"]
    if report.get("door_refuses_threshold"):
        lines.append(f"  NOTE: the door would refuse this threshold and never run at it: "
                     f"{report['door_refuses_threshold']}")
    for part in report["datasets"]:
        how = (f"each whole frame scaled to {report['source_size']} and put through the face "
               f"gate, as the door camera would see it" if part["gate"]
               else "each image taken as a face crop, the gate skipped")
        lines.append(f"  {part['data']}: {part['n']} images, {how}")
        if part.get("unreadable"):
            lines.append(f"    {part['unreadable']}")
        lines += _say_part(part)
    if len(report["datasets"]) > 1:
        lines.append("  all datasets together:")
        lines += _say_part(report)
    if report.get("per_image"):
        lines.append(f"per image: {report['per_image']}")
    for png in report.get("plots", []):
        lines.append(f"plot: {png}")
    if not report.get("per_image") or not report.get("plots"):
        lines.append("which images: --per-image FILE (a CSV row per image), --plot DIR (ROC curve "
                     "and the misses, false opens first); --json for all the numbers")
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

"""``happyhouse-adapt``: a house's own door frames -> a proven bundle for its door, or a refusal.

    happyhouse-adapt --frames my_house/ --out my_bundle/

``my_house/`` is what ``happyhouse-daemon --collect`` writes (``happy/``,
``not_happy/``: whole frames of this door's camera). Steps, each of which can
refuse, and nothing is written unless all pass:

1. every frame goes through the door's own path (scaled to the camera size,
   the shipped face gate, the contract's face crop); a frame without a face
   is never opened (scored 0) and never trains. Too few face frames of a
   class, or classes too unbalanced to judge, is refused with what is missing;
2. estimate: the house protocol (``happyhouse.train.house_cv``): K-fold CV
   over the house's frames, each fold fine-tuning the general model and
   scoring its unseen frames; with the general model's geometry stage the
   scores are fused exactly as the door fuses them (each model with the
   geometry head corrected on its own training frames, ``--geometry-head``)
   and thresholds are chosen on fused out-of-fold scores;
3. compare: the bundle the door runs now (``--current``, default the one the
   door's ``--config`` serves, else the shipped one) scores the same frames through the door's own pipeline; an adapted
   model with more errors is refused, and so is one with more false opens than
   the current bundle plus the door's allowance (:func:`worse_than_current`);
4. the model the house deploys: one fine-tune on all face frames (the
   protocol's refit; the fused threshold from its own inner folds: set over
   every frame, it is usually stricter than the folds', so the estimate's
   unseen-frame scores at it must beat the current bundle as well, and the
   report gives them as what the door can expect), with the house's geometry head (corrected on all its face frames), converted to int8
   with parity proven on every face frame (fewer than 100 face frames in all
   are refused in step 1: ``--check`` wants a hold-out of >= 100) and
   self-tested (``happyhouse.convert``);
5. ``--out`` gets the bundle and ``--report`` (default ``OUT-report``)
   ``metrics.json`` and plots, with the per-frame scores.

Exit codes: 0 a bundle written, 1 refused (worse than the current bundle),
2 a fixable error (frames, layout, model, folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from happyhouse.daemon.datasets import CLASSES
from happyhouse.daemon.errors import DataError, HappyHouseError, ModelError, refuse_unless
from happyhouse.daemon.evidence import MIN_HOLDOUT
from happyhouse.daemon.filesafety import path_arg, replace_folders, require_file

from .house_cv import GENERAL_MODEL, check_protocol_numbers

#: the geometry head a house's bundle carries (``--geometry-head``)
HEAD_HOW = {"house": "the general head corrected on the house's own frames (fit_house_head)",
            "general": "the general model's head, unchanged"}
#: how a house's threshold is chosen (the house protocol's refit)
THRESHOLD_RULE = ("lowest fused threshold >= 0.5 with out-of-fold false-open rate "
                  "<= --max-false-open")

log = logging.getLogger("happyhouse.train.adapt")

EXIT_WRITTEN, EXIT_REFUSED = 0, 1
#: fewest frames with a face per class the estimate can stand on (5 folds of >= 4 each)
MIN_PER_CLASS = 20
#: the rarer class must be at least this share of the larger one
MIN_BALANCE = 0.25
#: fewest face frames in all: the bundle's parity hold-out is every face frame
#: (``parity_holdout``), and ``--check`` wants >= MIN_HOLDOUT of them
MIN_FACE_FRAMES = MIN_HOLDOUT
WORDS = {0: "not-smiling", 1: "smiling"}
FINAL_FOLD = 99


#: false opens a door may add over the current bundle: one per this many not-smiling
#: frames (the house goal's "<= 1 false open of 66"). A current bundle that hardly
#: ever opens has none to lose; without an allowance no adapted model that opens for
#: the house's smiles could replace it, however many more it lets in.
FRAMES_PER_EXTRA_FALSE_OPEN = 66


def worse_than_current(new: dict, old: dict, not_smiling: int) -> Optional[str]:
    """Why the adapted model (``new`` figures) must not replace the current one, or None.

    More errors is worse. More false opens is worse beyond one per
    :data:`FRAMES_PER_EXTRA_FALSE_OPEN` not-smiling frames of the house.
    """
    allowance = not_smiling // FRAMES_PER_EXTRA_FALSE_OPEN
    if new["errors"] > old["errors"]:
        return "more errors"
    if new["false_opens"] > old["false_opens"] + allowance:
        return (f"more false opens than the {allowance} more its {not_smiling} not-smiling "
                f"frames allow (one per {FRAMES_PER_EXTRA_FALSE_OPEN})")
    return None


def refuse_if_worse(new: dict, old: dict, not_smiling: int, current: str, what: str,
                    hint: str = "") -> None:
    """Raise :class:`Refused` (one line) when ``what``'s figures ``new`` must not replace
    the bundle ``current`` whose figures on the same frames are ``old``."""
    why = worse_than_current(new, old, not_smiling)
    if why:
        raise Refused(f"refused, nothing written ({why}): {what} makes "
                      f"{counted(new['errors'], 'error')} with "
                      f"{counted(new['false_opens'], 'false open')}, the bundle the door runs now "
                      f"({current}) {old['errors']} with {old['false_opens']}; the door keeps "
                      f"its bundle. Collect more frames, above all not-smiling ones, at other "
                      f"times of day{hint}")


def burst_counts(groups: np.ndarray) -> dict:
    """How many frames sit in bursts (groups of more than one) and how many bursts."""
    _, sizes = np.unique(groups, return_counts=True)
    return {"frames": int(sizes[sizes > 1].sum()), "bursts": int(np.sum(sizes > 1))}


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless one ("1 false open"): a technician reads these."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class Refused(HappyHouseError):
    """The adapted model is not better than the bundle the door runs now."""

    exit_code = EXIT_REFUSED


def load_frames(path: Path, spec, limit: Optional[int] = None, cfg=None, level=None):
    """(dataset of gated crops, has_face): every frame as the door (``cfg``) would crop it
    (levelled as the geometry stage ``level`` the bundle will carry levels it)."""
    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.datasets import load_dataset, unreadable_line

    from .data import door_face_crops

    if not Path(path).is_dir():
        raise DataError(f"{path} is not a folder: give the folder --collect wrote "
                        f"(with happy/ and not_happy/)")
    cfg = cfg or load_config(None, {"latch.gpio": "mock"})
    # wrong layout, empty class: DataError; frames larger than the camera's, or of several
    # sizes (its resolution changed between sessions): scaled to it, as the door path does
    data = load_dataset(path, size=None, limit=limit, frame_size=(cfg.camera_width, cfg.camera_height))
    if data.skipped:
        log.warning("%s", unreadable_line(data.skipped))
    raw = data.images
    data.images, has_face = door_face_crops(data.images, spec, cfg, level)
    keep = distinct_frames(raw, data.labels, data.ids, has_face)
    data = data.subset(keep)
    data.raw, has_face = raw[keep], has_face[keep]
    return data, has_face


def distinct_frames(frames: np.ndarray, labels: np.ndarray, ids, has_face: np.ndarray) -> np.ndarray:
    """Indices of the frames to keep, each face frame once: copies of a frame (the same
    pixels under other names) passed the too-few-frames refusal four times over, sat in the
    estimate's train and test folds at once, and counted again in the parity proof. A face
    frame filed under both labels is refused: which one is right is the house's to say.
    Frames without a face are kept as they are (nothing uses them but the counts)."""
    import hashlib

    first = {}
    keep, copies = [], []
    for i, image in enumerate(frames):
        if not has_face[i]:
            keep.append(i)
            continue
        key = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()
        if key not in first:
            first[key] = i
            keep.append(i)
            continue
        j = first[key]
        if labels[j] != labels[i]:
            raise DataError(f"the same frame is filed as {CLASSES[labels[j]]} "
                            f"({Path(ids[j]).name}) and as {CLASSES[labels[i]]} "
                            f"({Path(ids[i]).name}): keep it in one class folder")
        copies.append(Path(ids[i]).name)
    if copies:
        log.warning("left out %d copies of frames already counted (the same pixels under "
                    "another name): %s%s", len(copies), ", ".join(copies[:3]),
                    " ..." if len(copies) > 3 else "")
    return np.asarray(keep, dtype=np.int64)


def check_inner_folds(labels: np.ndarray, has_face: np.ndarray, k: int, inner_k: int) -> None:
    """Each training part of the estimate (``k`` folds over every frame, its face frames
    trained on) is split again into ``inner_k`` folds: each class needs that many face
    frames in every part. It failed inside the estimate as "class 0 has 30 images, fewer
    than 80 folds". Checked at the worst a fold can deal: all of the left-out fold's
    frames of the class had a face."""
    for c in (0, 1):
        n = int(np.sum(labels == c))
        least = int(np.sum(has_face & (labels == c))) - -(-n // k)  # folds dealt round-robin
        if least < inner_k:
            raise DataError(f"--inner-k {inner_k} needs >= {inner_k} {WORDS[c]} face frames in "
                            f"each training part of the estimate (--k {k}), which may have "
                            f"{max(least, 0)}: lower --inner-k or collect more {WORDS[c]} frames")


def check_enough(labels: np.ndarray, has_face: np.ndarray, minimum: int) -> None:
    """DataError naming everything missing at once: one rule at a time sent a technician back
    to collect again and again (20 not-smiling frames, then "100 face frames in all")."""
    faces = [int(np.sum(has_face & (labels == c))) for c in (0, 1)]
    totals = [int(np.sum(labels == c)) for c in (0, 1)]
    # each class needs its minimum, a share of the other (balance), and together the total
    need = [max(minimum, int(np.ceil(MIN_BALANCE * faces[1 - c]))) for c in (0, 1)]
    after = [max(faces[c], need[c]) for c in (0, 1)]  # once each class has its minimum
    if sum(after) < MIN_FACE_FRAMES:
        # the rest of the total from the class that has fewer
        rare = int(np.argmin(after))
        need[rare] = after[rare] + MIN_FACE_FRAMES - sum(after)
    missing = [c for c in (1, 0) if faces[c] < need[c]]
    if not missing:
        return
    parts = []
    for c in missing:
        lost = totals[c] - faces[c]
        parts.append(f"{need[c] - faces[c]} more {WORDS[c]} frames with a face (have {faces[c]}, "
                     f"need >= {need[c]}" + (f"; {lost} more had no face the door's gate could "
                                             f"find" if lost else "") + ")")
    raise DataError(f"not enough frames to judge an adapted bundle: collect {' and '.join(parts)} "
                    f"with happyhouse-daemon --collect DIR --label "
                    f"{' / '.join(CLASSES[c] for c in missing)} (the total must reach "
                    f"{MIN_FACE_FRAMES} face frames, each class at least {minimum} and "
                    f"{MIN_BALANCE:.0%} of the other)")


def parity_holdout(data, has_face: np.ndarray, frames: Path):
    """(hold-out, description): every face crop of the house, labelled.

    The converter's own split would hold back a fifth of a house's frames, far
    fewer than the evidence rule's MIN_HOLDOUT. Float/int8 agreement is a
    question about the model's arithmetic on real inputs, so every face frame
    proves it, although calibration drew on the same frames (they are all the
    house has). Mirror images would double the count but not the evidence: the
    shipped general model, and so every model adapted from it, averages a face
    with its mirror image inside the model and scores both the same.
    """
    faces = data.subset(np.flatnonzero(has_face))  # the contract's crops (load_frames)
    faces.sources = [Path(frames).name]  # shipped in words: the folder's name, not its path
    n, happy = len(faces), int(faces.labels.sum())
    words = (f"every face frame of {Path(frames).name} ({n}: {happy} smiling, {n - happy} not; "
             f"calibration draws on them too)")
    return faces, words


#: how many frames of each class the report names for a person to check (the model disputes them most)
DISPUTED_PER_CLASS = 3


def disputed_frames(labels: np.ndarray, has_face: np.ndarray, scores: np.ndarray,
                    n: int = DISPUTED_PER_CLASS) -> List[int]:
    """Indices of the face frames whose label the estimate disputes most, worst first per class.

    A not-smiling frame that scores high sets the house's threshold (it must
    stay closed for it), so one smile collected under ``not_happy`` costs the
    door many smiles; a smiling frame that scores low is a missed smile or a
    neutral face under ``happy``. Either is worth a look before trusting the
    figures: move a frame to its right class folder and run again.
    """
    out: List[int] = []
    for label, order in ((0, -1), (1, 1)):
        members = np.flatnonzero(has_face & (labels == label))
        out += [int(i) for i in members[np.argsort(order * scores[members], kind="stable")][:n]]
    return out


def describe_frames(ids, labels: np.ndarray, scores: np.ndarray, frames: Path,
                    which: List[int]) -> List[dict]:
    """{frame (relative to the frames folder), label, score} of each frame in ``which``."""
    out = []
    for i in which:
        try:
            name = Path(ids[i]).relative_to(frames).as_posix()
        except ValueError:
            name = "/".join(Path(ids[i]).parts[-2:])
        out.append({"frame": name, "label": CLASSES[int(labels[i])], "score": round(float(scores[i]), 5)})
    return out


def disputed_text(disputed: List[dict]) -> str:
    return ", ".join(f"{d['frame']} ({d['score']:.2f})" for d in disputed)


def door_config(path: Optional[Path]):
    """The door's config (``--config``: a copy of its config file), the latch never driven;
    without one, this machine's default config file if it has one, else the built-in defaults."""
    from happyhouse.daemon.config import load_config

    return load_config(str(path) if path else None, {"latch.gpio": "mock"}, required=bool(path))


def current_door(bundle: Optional[Path], frames_rgb: np.ndarray, cfg=None):
    """(scores, happy) of the bundle the door runs now on whole frames, as the door scores them."""
    from happyhouse.daemon.bundle import load_bundle
    from happyhouse.daemon.evaluate import observe_whole_frame
    from happyhouse.daemon.pipeline import Pipeline

    cfg = cfg or door_config(None)
    # door=False: only compared, never armed (a door's bundle too poor to arm is what an
    # adaptation replaces)
    pipeline = Pipeline.from_config(cfg, load_bundle(bundle), door=False)
    size = (cfg.camera_width, cfg.camera_height)
    observed = [observe_whole_frame(pipeline, rgb, size)[0] for rgb in frames_rgb]
    scores = np.array([0.0 if o.score is None else float(o.score) for o in observed])
    return scores, np.array([int(o.happy) for o in observed]), pipeline


def protocol_args(args, work: Path) -> argparse.Namespace:
    """The house protocol's options (``house_cv``), from this tool's."""
    return argparse.Namespace(
        data=args.frames, work=work, scratch=None, init=args.general, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, augment=args.augment,
        patience=args.patience, max_false_open=args.max_false_open, crop="face",
        inner_k=args.inner_k, protocol=args.protocol, train_frames=None, no_geometry=False,
        geometry_head=args.geometry_head)


def final_model(pargs, data, has_face, fusion, work: Path):
    """The model the house deploys, trained on every face frame, in a folder the converter reads.

    Returns (model path, fused threshold, training info, geometry head or None)."""
    from . import house_cv
    from .trainer import META_FILE, read_meta, write_meta

    everything = np.flatnonzero(has_face)
    combine = house_cv.same_score if fusion is None else fusion
    fit = house_cv.refit_fold if pargs.protocol == "refit" else house_cv.split_fold
    last = FINAL_FOLD  # the protocol's fold number for "all frames" (its work folder)
    model, threshold, info, _ = fit(pargs, data, everything, last, np.array([], np.int64),
                                    combine)
    info = house_cv.fold_record(info)  # the refit protocol also hands back its inner scores
    folder = work / "final"
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    trained = work / f"fold{last}" / ("inner0" if pargs.protocol == "refit" else "")
    meta = read_meta(trained / "model.keras")
    meta["training"] = {**meta["training"], "door_frames": True, **info}
    meta["house_adapt"] = {"frames": str(pargs.data), "protocol": pargs.protocol,
                           "from": str(pargs.init)}
    meta["data"] = data.summary()
    if fusion is None:
        meta["threshold"] = float(threshold)
    if pargs.protocol == "refit":
        # inner fold 0 lent its metadata (the refit writes none): say what was shipped, a
        # model trained on every face frame for the inner folds' median epochs, whose
        # threshold the inner folds' out-of-fold scores chose; it has no validation of its own
        meta.pop("validation", None)
        meta["split"] = {"n_train": int(len(everything)), "n_val": 0,
                         "rule": "the house protocol's refit: every face frame trains"}
        meta["training"].update(epochs=info["refit_epochs"], epochs_run=info["refit_epochs"],
                                best_epoch=None)
        meta["threshold"] = float(threshold)
        meta["threshold_rule"] = ("the house protocol's: lowest " + ("" if fusion is None else
                                  "fused ") + "threshold >= 0.5 with the inner folds' "
                                  f"out-of-fold false-open rate <= {pargs.max_false_open}")
    write_meta(folder / META_FILE, meta)
    head = None if fusion is None else fusion.head(everything)
    return folder / "model.keras", float(threshold), info, head


def carry_geometry(general: Path, folder: Path, threshold: float, figures: dict, head,
                   how: str) -> None:
    """The house's geometry head beside the house model, with the house's fused threshold.

    The recipe (mesh, alignment, fusion weights) is the general model's; the
    head is the one the estimate fused with (``how``), its sha256 recorded."""
    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.daemon.geometry import HEAD_FILE

    from .geometry import SIDECAR

    sidecar = json.loads((general.parent / SIDECAR).read_text(encoding="utf-8"))
    head.save(folder / HEAD_FILE)
    sidecar["geometry"]["head"]["sha256"] = sha256_file(folder / HEAD_FILE)
    sidecar.update(threshold=threshold, validation={"house_cv_fused": figures},
                   threshold_rule=f"the house protocol's: {THRESHOLD_RULE}", head=how,
                   model_file="model.keras")
    (folder / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")


def current_bundle(given: Optional[Path], cfg, config: Optional[Path]) -> Optional[Path]:
    """The bundle to beat: ``--current``, else the one the door's config serves (compared
    with the shipped one while it said "the bundle the door runs now"), else the shipped one."""
    if given is not None or not cfg.model_bundle:
        return given
    bundle = Path(cfg.model_bundle)
    if not bundle.is_dir():
        where = config or "this machine's config file"
        raise DataError(f"the door's config ({where}) serves the bundle "
                        f"{bundle}, which is not on this machine: copy that folder here and give "
                        f"it with --current, the bundle the adapted one must beat")
    return bundle


def check_apart(out: Path, report_out: Path, frames: Path, live: str = "") -> None:
    """DataError unless the bundle, the report and the house's frames are three separate
    places: each output is replaced whole, so one inside another deleted what was just
    made (and exit 0), and an output inside the frames would become frames."""
    from happyhouse.daemon.bundle import default_bundle_path
    from happyhouse.daemon.filesafety import inside

    if inside(default_bundle_path(), out):  # --current's default, the door's fallback
        raise DataError(f"--out {out} is the bundle shipped with happyhouse: a house's bundle "
                        f"goes in a folder of its own")
    for door in ([Path(live)] if live else []) + [Path("/etc/happyhouse")]:
        if inside(door, out) or inside(out, door):
            # replaced in place, a live bundle skipped the installer: no bundle.previous to
            # roll back to, no --verify-model, no swap lock
            raise DataError(f"--out {out} is where the door serves its bundle from ({door}): "
                            f"write it elsewhere, then install it with install.sh --bundle-only "
                            f"--bundle {out} (it keeps the previous one for a rollback)")
    if inside(out, report_out) or inside(report_out, out):
        raise DataError(f"--out {out} and --report {report_out} must be two separate folders, "
                        f"neither inside the other: each is replaced whole")
    for what, path in (("--out", out), ("--report", report_out)):
        if inside(path, frames):
            raise DataError(f"{what} {path} is inside --frames {frames}: give a folder outside "
                            f"the house's frames")


def run(args) -> dict:
    from happyhouse.convert.build import Options, check_writable, convert
    from happyhouse.daemon.preprocess import Preprocess

    from . import house_cv, report
    from .data import near_duplicate_groups, stratified_group_folds
    from .geometry import stage_beside
    from .label_audit import draw_sheets
    from .trainer import read_meta

    started = time.monotonic()
    out, report_out = Path(args.out), Path(args.report or f"{args.out}-report")
    cfg = door_config(args.config)  # the door's gate and camera: crop as that door does
    check_apart(out, report_out, Path(args.frames), cfg.model_bundle)
    args.current = current_bundle(args.current, cfg, args.config)
    inputs = [("--frames", args.frames), ("--general", args.general),
              ("--current", args.current), ("--config", args.config)]
    check_writable(out, inputs=inputs)
    check_writable(report_out, "a report", "metrics.json", inputs=inputs)
    require_file(args.general, "general model (--general: the models/general/model.keras of a "
                               "HappyHouse checkout)", ModelError)
    spec = Preprocess.from_dict(read_meta(args.general)["preprocess"]).geometric()
    general_stage = None if getattr(args, "no_geometry", False) else stage_beside(Path(args.general))
    data, has_face = load_frames(args.frames, spec, args.limit, cfg,
                                 general_stage[0] if general_stage else None)
    labels = data.labels
    check_enough(labels, has_face, args.min_per_class)
    if args.protocol == "refit":  # the only protocol with inner folds
        check_inner_folds(labels, has_face, args.k, args.inner_k)
    # the bundle to beat first: a wrong --current is a fixable error before the estimate
    # (hours with the defaults), not after it
    now_scores, now_pred, now = current_door(args.current, data.raw, cfg)
    work = Path(tempfile.mkdtemp(prefix="happyhouse-adapt."))
    try:
        pargs = protocol_args(args, work)
        # a burst of near-identical frames stays in one fold (split frame by frame, it sat
        # on both sides and flattered the estimate a worse bundle was accepted on)
        groups = near_duplicate_groups(data.images, has_face)
        fold = stratified_group_folds(labels, groups, args.k, args.seed)
        bursts = burst_counts(groups)
        if bursts["frames"]:
            log.info("%d frames are %d bursts of near-identical frames: each burst is kept in "
                     "one fold, so the estimate never scores a frame whose near-copy it trained "
                     "on", bursts["frames"], bursts["bursts"])
        _, fusion = house_cv.fusion_for(pargs, data.images, has_face, labels)
        cv = house_cv.cross_validate(pargs, data, has_face, fold, fusion)
        new = report.metrics(labels, cv["scores"], cv["threshold"], pred=cv["pred"])
        old = report.metrics(labels, now_scores, now.threshold, pred=now_pred)
        comparison = {k: {"adapted": new[k], "current": old[k]}
                      for k in ("accuracy", "errors", "false_opens", "recall")}
        which = disputed_frames(labels, has_face, cv["scores"])
        disputed = describe_frames(data.ids, labels, cv["scores"], Path(args.frames), which)
        not_smiling, current = int(np.sum(labels == 0)), now.bundle.path.name
        refuse_if_worse(new, old, not_smiling, current,
                        f"on the same {len(labels)} frames the adapted model (estimated by "
                        f"{args.k}-fold CV)",
                        f"; if a frame is in the wrong class folder, these are the likeliest: "
                        f"{disputed_text(disputed)}")
        model, threshold, info, head = final_model(pargs, data, has_face, fusion, work)
        # the house model ships with its own threshold, set over all the house's frames:
        # usually above the folds' (more not-smiling frames to stay above), so the door
        # misses more than the estimate says. The unseen-frame scores at that threshold
        # are what to expect, and they too must beat the door's current bundle
        shipped = report.metrics(labels, cv["scores"], threshold,
                                 pred=(has_face & (cv["scores"] >= threshold)).astype(int))
        refuse_if_worse(shipped, old, not_smiling, current,
                        f"at the threshold the house model would ship with, {threshold:.3f} "
                        f"(set over all {len(labels)} frames), the estimate's unseen-frame scores")
        comparison["at_bundle_threshold"] = {
            "threshold": float(threshold), "accuracy": shipped["accuracy"],
            "errors": shipped["errors"], "false_opens": shipped["false_opens"],
            "recall": shipped["recall"],
            "why": "the estimate's unseen-frame scores at the threshold the bundle ships with "
                   "(set over all the house's frames, usually stricter than the folds'): "
                   "what the door can expect"}
        if head is not None:
            carry_geometry(Path(args.general), model.parent, threshold,
                           {k: new[k] for k in ("n", "accuracy", "recall", "false_open_rate",
                                                "roc_auc")}, head, HEAD_HOW[args.geometry_head])
        n_faces = int(has_face.sum())
        held, held_words = parity_holdout(data, has_face, Path(args.frames))
        max_drop = args.max_drop if args.max_drop is not None else 100.0 / len(held) + 0.01
        staged = work / "bundle"
        bundle = convert(Options(model=model, calibration=[Path(args.frames)], out=staged,
                                 holdout_data=held, holdout_description=held_words,
                                 max_drop=max_drop, seed=args.seed, model_kept=False,
                                 notes=f"adapted to the house frames {Path(args.frames).name}"))
        report_dir = work / "report"
        result = report.write_report(
            report_dir, {}, data.images, labels, cv["scores"], cv["threshold"],
            scope=f"house {args.k}-fold CV, unseen frames", pred=cv["pred"],
            extra={"frames": str(args.frames), "frames_with_face": n_faces,
                   "general": str(args.general), "protocol": args.protocol,
                   "fused": fusion is not None,
                   "geometry_head": None if fusion is None else HEAD_HOW[args.geometry_head],
                   "bursts": {**bursts, "why": "frames of one burst (near-identical face "
                                                  "crops) are kept in one fold"},
                   "current_bundle": str(now.bundle.path),
                   "current_bundle_sha256": now.model_sha256, "comparison": comparison,
                   "final_model": info, "bundle_threshold": bundle.threshold,
                   "bundle_sha256": bundle.sha256,
                   "parity": bundle.meta["metrics"]["parity"],
                   "disputed": {"why": "the face frames whose label the estimate disputes most "
                                       "(not-smiling scored highest, smiling scored lowest): "
                                       "check each is in its right class folder",
                                "frames": disputed, "sheet": "disputed.png"},
                   "seconds": round(time.monotonic() - started, 1),
                   "frames_scored": [{
                       "id": data.ids[i], "label": int(labels[i]), "face": bool(has_face[i]),
                       "fold": int(fold[i]), "score": round(float(cv["scores"][i]), 5),
                       "classifier": round(float(cv["classifier"][i]), 5),
                       "geometry": None if np.isnan(cv["geometry"][i]) else round(float(cv["geometry"][i]), 5),
                       "pred": int(cv["pred"][i]), "current_score": round(float(now_scores[i]), 5),
                       "current_pred": int(now_pred[i])} for i in range(len(labels))]})
        draw_sheets(data.images[which], report_dir, name="disputed")  # numbered in report order
        # the earlier bundle and report stay whole until both new ones are beside them
        replace_folders(((staged, out), (report_dir, report_out)))
        return {"bundle": str(out), "report": str(report_out), "estimate": result,
                "comparison": comparison, "threshold": bundle.threshold, "disputed": disputed}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="happyhouse-adapt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", required=True, type=path_arg,
                   help="the house's frames: FOLDER/happy and FOLDER/not_happy (--collect)")
    p.add_argument("--out", required=True, type=path_arg,
                   help="the bundle folder to write (an existing one is replaced, so it must "
                        "hold an earlier bundle or nothing)")
    p.add_argument("--report", type=path_arg,
                   help="report folder (default OUT-report; an existing one must hold an "
                        "earlier report or nothing)")
    p.add_argument("--config", type=path_arg,
                   help="the door's config file (a copy of /etc/happyhouse/happyhouse.conf): "
                        "frames are gated and cropped with its camera size and [face] settings "
                        "(default: this machine's config file if any, else the built-in one)")
    p.add_argument("--general", type=path_arg, default=GENERAL_MODEL,
                   help="the shipped general model to fine-tune (its geometry.json, if any, "
                        "gives the geometry stage; default: this checkout's "
                        "models/general/model.keras, from any folder)")
    p.add_argument("--current", type=path_arg,
                   help="the bundle the door runs now (default: the one --config serves, "
                        "else the shipped bundle)")
    p.add_argument("--k", type=int, default=5, help="folds of the estimate")
    p.add_argument("--protocol", choices=("refit", "split"), default="refit")
    p.add_argument("--inner-k", type=int, default=4)
    p.add_argument("--geometry-head", choices=sorted(HEAD_HOW), default="house",
                   help="house: the general geometry head corrected on the house's frames "
                        "(default); general: the general head as it is")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--augment", default="light", choices=("door", "light", "none"))
    p.add_argument("--max-false-open", type=float, default=0.01)
    p.add_argument("--max-drop", type=float,
                   help="int8 parity: most accuracy lost, in points (default: one image of the "
                        "hold-out)")
    p.add_argument("--min-per-class", type=int, default=MIN_PER_CLASS)
    p.add_argument("--limit", type=int, help="at most this many frames per class (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.cli_errors import run_main

    # a fixable error is one line (run_main), and so is Ctrl-C during hours of estimate
    return run_main("happyhouse-adapt", lambda: _adapt(argv))


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse a number the estimate cannot use, in one line, before any frame is read."""
    check_protocol_numbers(args)  # the estimate is the house protocol: its numbers first
    refuse_unless((
        (args.min_per_class >= args.k, "--min-per-class must be at least --k"),
        (args.max_drop is None or 0 <= args.max_drop <= 100,
         f"--max-drop must be 0 to 100 percentage points, got {args.max_drop}"),
        (args.limit is None or args.limit >= 1, f"--limit must be at least 1, got {args.limit}"),
    ))


def _adapt(argv: Optional[List[str]]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_numbers(args)
    try:
        result = run(args)
    except Refused as exc:  # a verdict, not an error
        sys.stderr.write(f"happyhouse-adapt: {exc}\n")
        return exc.exit_code
    c = result["comparison"]
    b = c["at_bundle_threshold"]
    sys.stdout.write(
        f"bundle {result['bundle']} (threshold {result['threshold']:.3f}); report {result['report']}\n"
        f"estimated on the house's own unseen frames: accuracy {c['accuracy']['adapted']:.4f}, "
        f"{c['false_opens']['adapted']} false opens, recall {c['recall']['adapted']:.3f}\n"
        f"at the bundle's own threshold ({b['threshold']:.3f}), the same unseen-frame scores: "
        f"accuracy {b['accuracy']:.4f}, {b['false_opens']} false opens, recall {b['recall']:.3f} "
        f"(what the door can expect)\n"
        f"the bundle the door runs now, same frames: accuracy {c['accuracy']['current']:.4f}, "
        f"{c['false_opens']['current']} false opens, recall {c['recall']['current']:.3f}\n"
        f"frames to check are in their right class folder (the estimate disputes them most; "
        f"disputed.png in the report): {disputed_text(result['disputed'])}\n")
    return EXIT_WRITTEN


if __name__ == "__main__":
    sys.exit(main())

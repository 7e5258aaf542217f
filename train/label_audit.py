"""A second look at the general validation split's labels: blind review, audit, figures.

The bundle's threshold is the lowest with <= 1% false opens on the general
validation split, and recall at that point is one of issue #15's goals. Both
depend on the split's labels as much as on the model. A blind review of the
faces the model and the labels disagree on most (reports/label-audit/)
found most of the highest-scoring ``not_happy`` faces smiling, and some of them
no face at all (GENKI-4K's detector misses). This tool makes that review
repeatable by anyone, and keeps it apart from what the product learns from:

``sheets``
    picks the faces worth a second look (the highest-scoring ``not_happy``,
    the lowest-scoring ``happy``) and random faces of each class as a check
    on the reviewer, shuffles them, and draws them numbered on contact sheets
    with no label and no score: the reviewer judges the face, not the model.
    ``review.json`` maps each number to its face (do not read it while
    reviewing); ``verdicts.txt`` is the template the reviewer fills in.
``record``
    turns the filled-in verdicts (``S`` smiling, ``N`` not smiling, ``X`` no
    face, ``?`` unsure) into an audit file that names each face by
    ``source/class/file``, never by this machine's paths.
``score``
    the model's fused validation figures (as the bundle fuses classifier and
    geometry) with the datasets' labels and with the audit applied: ``S`` ->
    happy, ``N`` -> not happy, ``X`` left out, ``?`` as labelled.

    python -m happyhouse.train.label_audit sheets --model models/general/model.keras --out DIR
    python -m happyhouse.train.label_audit record --review DIR/review.json --verdicts DIR/verdicts.txt --out AUDIT.json
    python -m happyhouse.train.label_audit score --model models/general/model.keras --audit AUDIT.json --json OUT.json

A validation audit is a measurement: no threshold or checkpoint reads it (the
product's rule chooses them on the datasets' labels). ``sheets --part
training`` reviews the model's training faces instead; ``happyhouse-train
--label-audit`` applies such an audit to the training part only.
The Happy House frames are not read. Desktop-only (Keras).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from happyhouse.daemon.errors import DataError, refuse_unless, seed_check
from happyhouse.daemon.filesafety import (check_creatable, check_file_creatable, make_folder,
                                          path_arg, write_text_file)

from .audits import AUDIT_FORMAT, VERDICTS, apply_audit, face_name, load_audits

log = logging.getLogger("happyhouse.train.label_audit")

REVIEW_FORMAT = "happyhouse-label-review"
#: faces per contact sheet (8 columns x 5 rows) and each tile's side
PER_SHEET, COLUMNS, TILE = 40, 8, 160
#: what ``sheets`` picks by default: (not_happy by score, random not_happy, happy by score, random happy)
DEFAULT_PICKS = (80, 40, 60, 20)


def pick_for_review(labels: np.ndarray, scores: np.ndarray, counts: Sequence[int] = DEFAULT_PICKS,
                    seed: int = 0, reviewed: Optional[np.ndarray] = None) -> List[Tuple[int, str]]:
    """(index, why picked) of the faces to review, shuffled.

    Why: ``top-not-happy`` (labelled not happy, scored highest),
    ``random-not-happy``, ``low-happy`` (labelled happy, scored lowest),
    ``random-happy``. The random ones show how often the reviewer disagrees
    with a label the model did not question. Faces marked ``reviewed`` (an
    earlier round's) are not picked again, so a second round goes deeper.
    """
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    fresh = np.ones(len(labels), bool) if reviewed is None else ~np.asarray(reviewed, bool)
    rng = np.random.default_rng(seed)
    top_n, random_n, low_n, random_p = (int(c) for c in counts)
    picks: List[Tuple[int, str]] = []
    for cls, worst, n_worst, n_random, names in (
            (0, -1, top_n, random_n, ("top-not-happy", "random-not-happy")),
            (1, 1, low_n, random_p, ("low-happy", "random-happy"))):
        members = np.flatnonzero((labels == cls) & fresh)
        ranked = members[np.argsort(worst * scores[members], kind="stable")]
        chosen = ranked[:n_worst]
        rest = ranked[n_worst:]
        others = rng.choice(rest, min(n_random, len(rest)), replace=False) if len(rest) else rest
        picks += [(int(i), names[0]) for i in chosen] + [(int(i), names[1]) for i in others]
    order = rng.permutation(len(picks))
    return [picks[i] for i in order]


def draw_sheets(images_rgb: np.ndarray, out: Path, name: str = "sheet") -> List[Path]:
    """Numbered contact sheets of uint8 RGB faces (number = position), nothing else drawn.

    One sheet is ``OUT/NAME.png``; more are ``OUT/NAME-00.png``, ``OUT/NAME-01.png``, ...
    """
    import cv2

    paths = []
    for start in range(0, len(images_rgb), PER_SHEET):
        tiles = []
        for k, face in enumerate(images_rgb[start:start + PER_SHEET]):
            tile = cv2.resize(cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2BGR),
                              (TILE, TILE), interpolation=cv2.INTER_CUBIC)
            cv2.putText(tile, str(start + k), (3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                        (0, 255, 255), 2)
            tiles.append(tile)
        while len(tiles) % COLUMNS:
            tiles.append(np.zeros_like(tiles[0]))
        rows = [np.hstack(tiles[r:r + COLUMNS]) for r in range(0, len(tiles), COLUMNS)]
        several = len(images_rgb) > PER_SHEET
        path = out / (f"{name}-{start // PER_SHEET:02d}.png" if several else f"{name}.png")
        cv2.imwrite(str(path), np.vstack(rows))
        paths.append(path)
    return paths


def review_faces(review) -> List[Mapping]:
    """The faces of a review (``review.json``), each an object with a whole ``number`` and a
    ``face`` name; DataError naming the first entry that is not. A review is made by
    ``sheets`` but kept by hand, and an edited or foreign JSON must not end in a traceback."""
    if not isinstance(review, Mapping) or review.get("format") != REVIEW_FORMAT:
        raise DataError(f"not a {REVIEW_FORMAT} file (made by 'sheets')")
    faces = review.get("faces", [])
    if not isinstance(faces, list):
        raise DataError("its 'faces' is not a list of faces: make the review again with 'sheets'")
    for n, face in enumerate(faces):
        number = face.get("number") if isinstance(face, Mapping) else None
        name = face.get("face") if isinstance(face, Mapping) else None
        # bool is an int to Python, and a float or text number would be rounded or parsed
        if type(number) is not int or not isinstance(name, str):
            raise DataError(f"its face entry {n} ({json.dumps(face)[:80]}) lacks a "
                            f"whole 'number' and a 'face' name: make the review again with "
                            f"'sheets'")
    return faces


def read_verdicts(text: str, review: Mapping) -> Dict[str, str]:
    """{face name: verdict} from ``NUMBER VERDICT`` lines; ``#`` starts a comment.

    A number the review does not have, a verdict not in :data:`VERDICTS` or a
    number given twice is refused with its line; a number left out counts as ``?``.
    """
    faces = {int(f["number"]): str(f["face"]) for f in review_faces(review)}
    verdicts: Dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        number_ok = parts[0].isascii() and parts[0].isdigit()  # '²' passes isdigit(), not int()
        if len(parts) != 2 or not number_ok or parts[1].upper() not in VERDICTS:
            raise DataError(f"verdicts line {n}: {line!r} is not 'NUMBER VERDICT' with a verdict "
                            f"in {' '.join(VERDICTS)}")
        number, verdict = int(parts[0]), parts[1].upper()
        if number not in faces:
            raise DataError(f"verdicts line {n}: the review has no face number {number}")
        if faces[number] in verdicts:
            raise DataError(f"verdicts line {n}: face number {number} has a verdict already")
        verdicts[faces[number]] = verdict
    for face in faces.values():
        verdicts.setdefault(face, "?")
    return verdicts


def figures(labels: np.ndarray, scores: np.ndarray, max_false_open: float = 0.01) -> dict:
    """ROC AUC, the threshold the training rule would choose, recall and false opens there."""
    from happyhouse.daemon.roc import roc_auc

    from . import report

    threshold = report.choose_threshold(labels, scores, max_false_open)
    m = report.metrics(labels, scores, threshold)
    return {"n": int(len(labels)), "happy": int(np.sum(labels == 1)),
            "roc_auc": round(float(roc_auc(labels, scores)), 4),
            "threshold_for_max_false_open": round(float(threshold), 4),
            "recall": round(float(m["recall"]), 4), "false_open_rate": round(float(m["false_open_rate"]), 4)}


def audited_figures(names: Sequence[str], labels: np.ndarray, scores: np.ndarray,
                    audit: Mapping[str, str], max_false_open: float = 0.01,
                    bundle_threshold: Optional[float] = None) -> dict:
    """The same scores judged by the datasets' labels and by the audited ones."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.float64)
    audited, keep = apply_audit(names, labels, audit)
    out = {"max_false_open": max_false_open,
           "reviewed_in_split": int(sum(1 for n in names if n in audit)),
           "relabelled": int(np.sum((audited != labels) & keep)), "left_out": int(np.sum(~keep)),
           "dataset_labels": figures(labels, scores, max_false_open),
           "audited_labels": figures(audited[keep], scores[keep], max_false_open)}
    if bundle_threshold is not None:
        for key, (y, s) in (("dataset_labels", (labels, scores)),
                            ("audited_labels", (audited[keep], scores[keep]))):
            opened = s >= bundle_threshold
            out[key]["at_bundle_threshold"] = {
                "threshold": round(float(bundle_threshold), 4),
                "recall": round(float(opened[y == 1].mean()), 4),
                "false_opens": int(opened[y == 0].sum()), "not_happy": int(np.sum(y == 0))}
    return out


def model_contract(model_path: Path):
    """The preprocessing contract ``model_path`` was trained with (its metadata)."""
    from happyhouse.convert.metadata import find_metadata, read_metadata

    return read_metadata(find_metadata(model_path, flag=None)).preprocess


def fused_scorer(model_path: Path, geometry_from: Optional[Path] = None):
    """A function: uint8 face crops -> the fused scores the bundle of ``model_path`` would give.

    ``geometry_from``: take the geometry stage beside that model instead (a
    candidate classifier judged with the shipped head).
    """
    from happyhouse.daemon.errors import ModelError
    from happyhouse.daemon.geometry import fuse

    from .geometry import stage_beside
    from .trainer import load_model, predict

    stage_model = Path(geometry_from or model_path)
    found = stage_beside(stage_model)
    if found is None:
        raise ModelError(f"{stage_model.parent}: no geometry.json beside the model; the audit "
                         f"scores faces as the bundle fuses them")
    stage, model = found[0], load_model(model_path)
    spec = model_contract(model_path)

    def score(crops: np.ndarray) -> np.ndarray:
        geometry = np.array([stage.score(c) for c in crops])
        return np.asarray(fuse(predict(model, crops, spec), geometry, stage.spec.weights), np.float64)
    return score


PARTS = ("validation", "training")


def split_faces(model_path: Path, data_paths: Sequence[Path], part: str = "validation"):
    """(face names, labels, uint8 crops) of a general model's validation (or training) split."""
    from .data import load_training_data
    from .geometry import validation_mask

    data = load_training_data([str(d) for d in data_paths], model_contract(model_path).geometric())
    in_val = validation_mask(data.ids, model_path.parent / "split.json")
    if not in_val.any():
        raise DataError(f"none of the given faces is in {model_path.parent / 'split.json'}'s "
                        f"validation split: give the data the model was trained on")
    val = np.flatnonzero(in_val if part == "validation" else ~in_val)
    return [face_name(data.ids[i]) for i in val], data.labels[val], data.images[val]


def door_copies(crops: np.ndarray) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{copy: (which faces it holds, their crops)}: the validation faces as a door would show them.

    ``door-shifted`` (small, dark, soft: :func:`happyhouse.train.geometry.door_shift`),
    ``door-framed`` (re-cropped by the shipped face gate: :mod:`happyhouse.train.framing`)
    and both; a face the gate does not find is not in the framed copies.
    """
    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.facegate import FaceGate

    from .framing import door_framed
    from .geometry import door_shift

    gate = FaceGate.from_config(load_config(None, {"latch.gpio": "mock"}))
    shifted = door_shift(crops)
    out = {"door-shifted": (np.arange(len(crops)), shifted)}
    for name, faces in (("door-framed", crops), ("door-framed door-shifted", shifted)):
        by_margin, found, _, _ = door_framed(faces, gate, (0.0,))
        out[name] = (np.flatnonzero(found), by_margin[0.0][found])
    return out


def door_threshold(labels_by_copy: Sequence[np.ndarray], scores_by_copy: Sequence[np.ndarray],
                   max_false_open: float = 0.01) -> float:
    """The lowest threshold (>= 0.5) whose false-open rate is within ``max_false_open`` in every copy."""
    candidates = np.unique(np.concatenate([s for s in scores_by_copy] + [np.array([0.5])]))
    for t in candidates[candidates >= 0.5]:
        if all(np.mean(s[y == 0] >= t) <= max_false_open
               for y, s in zip(labels_by_copy, scores_by_copy)):
            return float(t)
    return float(np.nextafter(candidates.max(), np.inf))


def bundle_threshold_of(model_path: Path) -> Optional[float]:
    from .geometry import SIDECAR

    try:
        return float(json.loads((model_path.parent / SIDECAR).read_text(encoding="utf-8"))["threshold"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sheets(args) -> dict:
    names, labels, crops = split_faces(args.model, args.data, args.part)
    scores = fused_scorer(args.model)(crops)
    earlier = load_audits(args.skip or [])
    picks = pick_for_review(labels, scores, args.picks, args.seed,
                            reviewed=np.array([n in earlier for n in names]))
    make_folder(args.out, "--out")
    sheets = draw_sheets(crops[[i for i, _ in picks]], args.out)
    review = {"format": REVIEW_FORMAT, "version": 1, "model": f"{args.model.parent.name}/{args.model.name}",
              "part": args.part, "seed": args.seed,
              "note": "the key to the sheets: do not read it while reviewing",
              "verdicts": VERDICTS,
              "faces": [{"number": n, "face": names[i], "label": int(labels[i]), "picked": why}
                        for n, (i, why) in enumerate(picks)]}
    (args.out / "review.json").write_text(json.dumps(review, indent=1) + "\n", encoding="utf-8")
    template = ["# one line per face: NUMBER VERDICT (" + ", ".join(f"{k} {v}" for k, v in VERDICTS.items()) + ")"]
    template += [f"{n} ?" for n in range(len(picks))]
    (args.out / "verdicts.txt").write_text("\n".join(template) + "\n", encoding="utf-8")
    return {"faces": len(picks), "sheets": [p.name for p in sheets], "out": str(args.out)}


def _read_text(path: Path, what: str) -> str:
    try:
        # utf-8-sig: an editor that saves UTF-8 with a byte-order mark (Notepad) put
        # '\ufeff' before the first line, which then was not 'NUMBER VERDICT'
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{what} {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def _record(args) -> dict:
    try:
        review = json.loads(_read_text(args.review, "--review"))
    except ValueError as exc:
        raise DataError(f"--review {args.review} is not JSON: {exc}") from None
    text = _read_text(args.verdicts, "--verdicts")
    try:
        review_faces(review)
    except DataError as exc:
        raise DataError(f"--review {args.review}: {exc}") from None
    verdicts = read_verdicts(text, review)
    by_group: Dict[str, Counter] = {}
    for face in review["faces"]:
        by_group.setdefault(str(face.get("picked", "not recorded")), Counter())[
            verdicts[face["face"]]] += 1
    audit = {"format": AUDIT_FORMAT, "version": 1, "model": review.get("model"),
             "part": review.get("part", "validation"),
             "how": args.how or "blind review of contact sheets made by 'label_audit sheets'",
             "verdicts": VERDICTS,
             "by_picked": {g: dict(sorted(c.items())) for g, c in sorted(by_group.items())},
             "faces": dict(sorted(verdicts.items()))}
    write_text_file(args.out, json.dumps(audit, indent=1) + "\n", "--out")
    return {"faces": len(verdicts), "by_picked": audit["by_picked"], "out": str(args.out)}


def _score(args) -> dict:
    audit = load_audits(args.audit)
    names, labels, crops = split_faces(args.model, args.data)
    score = fused_scorer(args.model)
    scores = score(crops)
    bundle_threshold = bundle_threshold_of(args.model)
    result = {"model": f"{args.model.parent.name}/{args.model.name}",
              "audit": [p.name for p in args.audit],
              **audited_figures(names, labels, scores, audit, args.max_false_open, bundle_threshold)}
    if args.door_copies:
        audited, keep = apply_audit(names, labels, audit)
        copies = {"validation": (np.arange(len(crops)), scores)}
        copies.update({name: (which, score(faces)) for name, (which, faces) in door_copies(crops).items()})
        result["door_copies"] = {
            name: audited_figures([names[i] for i in which], labels[which], s, audit,
                                  args.max_false_open, bundle_threshold)
            for name, (which, s) in copies.items() if name != "validation"}
        kept = [(audited[which][keep[which]], s[keep[which]]) for which, s in copies.values()]
        result["door_threshold_audited"] = {
            "rule": f"lowest threshold >= 0.5 with false opens <= {args.max_false_open:.0%} "
                    f"(audited labels) in the validation split and each door copy",
            "threshold": round(door_threshold([y for y, _ in kept], [s for _, s in kept],
                                              args.max_false_open), 4)}
    if args.json:
        write_text_file(args.json, json.dumps(result, indent=1) + "\n", "--json")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.label_audit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def model_args(q):
        q.add_argument("--model", required=True, type=path_arg,
                       help="a general model (.keras) with split.json and geometry.json beside it")
        q.add_argument("--data", type=path_arg, action="append",
                       help="its training data (default GENKI-4K and SMILEsmileD under $HAPPYHOUSE_DATA)")

    q = sub.add_parser("sheets", help="blind contact sheets of the faces worth a second look")
    model_args(q)
    q.add_argument("--out", required=True, type=path_arg)
    q.add_argument("--picks", type=int, nargs=4, default=list(DEFAULT_PICKS),
                   metavar=("TOP_NOT_HAPPY", "RANDOM_NOT_HAPPY", "LOW_HAPPY", "RANDOM_HAPPY"))
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--part", choices=PARTS, default="validation",
                   help="the model's split to review (its training faces are scored in-sample)")
    q.add_argument("--skip", type=path_arg, action="append", metavar="AUDIT",
                   help="an earlier round's audit: its faces are not picked again (repeatable)")
    q = sub.add_parser("record", help="the filled-in verdicts -> an audit file")
    q.add_argument("--review", required=True, type=path_arg)
    q.add_argument("--verdicts", required=True, type=path_arg)
    q.add_argument("--out", required=True, type=path_arg)
    q.add_argument("--how", help="who reviewed, when, how (kept in the audit)")
    q = sub.add_parser("score", help="validation figures with the datasets' and the audited labels")
    model_args(q)
    q.add_argument("--audit", required=True, type=path_arg, action="append",
                   help="an audit file; repeat for each review round")
    q.add_argument("--max-false-open", type=float, default=0.01)
    q.add_argument("--door-copies", action="store_true",
                   help="also the door-shifted and door-framed copies of the split (2 min)")
    q.add_argument("--json", type=path_arg)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.cli_errors import run_main

    return run_main("label_audit", lambda: _main(argv))


def _main(argv: Optional[List[str]]) -> int:
    from happyhouse.daemon.datasets import data_root

    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command in ("sheets", "score") and not args.data:
        root = data_root()
        if root is None:
            raise DataError("give --data or set HAPPYHOUSE_DATA")
        args.data = [root / "genki4k-train", root / "smilesmiled"]
    # the output's folder first: a wrong path is one line before the work, not after it
    if args.command == "sheets":
        refuse_unless((seed_check("--seed", args.seed),
                       # -3 was a numpy traceback; -5 as the first count took all but 5
                       (all(n >= 0 for n in args.picks) and sum(args.picks) > 0,
                        f"--picks must be four counts of 0 or more, not all 0, got "
                        f"{' '.join(map(str, args.picks))}")))
        check_creatable(args.out, "--out")
        if Path(args.out).expanduser().is_dir() and any(Path(args.out).expanduser().iterdir()):
            # a re-run replaced a review in progress (its filled-in verdicts.txt and the
            # key to them) and left the last round's extra sheets beside the new ones
            raise DataError(f"--out {args.out} is not empty (a review in progress?): give a "
                            f"new folder for the new sheets")
    elif args.command == "record" or args.json:
        flag, out = ("--out", args.out) if args.command == "record" else ("--json", args.json)
        check_file_creatable(out, flag)  # a folder there failed only at the write
        if args.command == "record":  # --out review.json replaced the key to the verdicts
            for given, path in (("--review", args.review), ("--verdicts", args.verdicts)):
                if Path(path).expanduser().resolve() == Path(out).expanduser().resolve():
                    raise DataError(f"--out {out} is the {given} file: it would be replaced; "
                                    f"give the audit a name of its own")
    if args.command == "score":  # nan or -3 gave threshold 1.0, recall 0 and a NaN in the JSON
        refuse_unless(((0.0 <= args.max_false_open < 1.0,
                        f"--max-false-open must be in [0, 1), got {args.max_false_open}"),))
    result = {"sheets": _sheets, "record": _record, "score": _score}[args.command](args)
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

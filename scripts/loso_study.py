#!/usr/bin/env python3
"""Does the face geometry carry to faces of a source never trained on better than the appearance?
(issue 15, a study: the fusion weights judged on a door proxy that needs no door frames)

A new door is a source of faces the models never saw. This data holds two sources, so each
direction trains a classifier and a geometry head on one source only and judges them on
every face of the other (and on its three door copies, ``label_audit.door_copies``):

    A: trained on SMILEsmileD (gray, tight LFW crops), judged on GENKI-4K (colour, in the wild)
    B: trained on GENKI-4K, judged on SMILEsmileD

Each held-out face is scored by the classifier and the head alone and fused as the bundle
fuses (mean logit) at every weight of ``GRID``. The in-domain floor is the shipped
classifier and head on the general validation split at the same weights (the ``feasible``
set). Study T then asks whether a threshold set on the training source's own validation split
(and its door copies) carries to the held-out source (``threshold_rules``). Both rules, written
before the run, are in ``reports/README.md`` (``loso/``). Never reads door frames.

::

    happyhouse-train --data $D/smilesmiled --normalize clahe --mirror-average \\
        --augment door-framing --epochs 40 --patience 8 --seed 1 --workers 2 \\
        --out runs/loso/smilesmiled/model                                  # ~35 min
    python -m happyhouse.train.geometry --data $D/smilesmiled --model runs/loso/smilesmiled/model/model.keras
    (the same with genki4k-train)
    python scripts/loso_study.py --direction A runs/loso/smilesmiled/model/model.keras $D/genki4k-train \\
        --direction B runs/loso/genki4k-train/model/model.keras $D/smilesmiled \\
        --json reports/loso/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aligned_crop_study import data_paths  # noqa: E402  (sibling study scripts)
from classifier_mix_study import judged as in_domain_judged  # noqa: E402
from ensemble_study import AUDITS, SHIPPED, classifier_scores, faces_and_geometry  # noqa: E402

#: classifier:geometry weights judged; (1, 0) is the classifier alone, (0, 1) the head alone
GRID: Tuple[Tuple[float, float], ...] = (
    (1.0, 0.0), (0.8, 0.2), (0.7, 0.3), (0.65, 0.35), (0.6, 0.4), (0.55, 0.45),
    (0.5, 0.5), (0.4, 0.6), (0.3, 0.7), (0.0, 1.0))
SHIPPED_WEIGHTS = (0.7, 0.3)
#: the rule's numbers (reports/README.md, loso/)
MIN_GAIN_A = 0.005
MAX_VALIDATION_AUC_DROP = 0.002
AUDITED_AUC_FLOOR = 0.985
AUDITED_RECALL_FLOOR = 0.90


def name(w: Sequence[float]) -> str:
    return f"{w[0]:g}:{w[1]:g}"


def held_out_scores(model: Path, held_out: Path, cache: Path) -> dict:
    """Labels and per-copy classifier and geometry scores of every face of ``held_out`` (cached)."""
    from happyhouse.train.audits import face_name
    from happyhouse.train.data import load_training_data
    from happyhouse.train.label_audit import model_contract

    def faces():
        data = load_training_data([str(held_out)], model_contract(model).geometric())
        return [face_name(i) for i in data.ids], data.labels, data.images

    return copy_scores(model, held_out.name, faces, cache)


def own_validation_scores(model: Path, source: Path, cache: Path) -> dict:
    """The same for the model's own validation split (of ``source``, its training source)."""
    from happyhouse.train.label_audit import split_faces

    return copy_scores(model, f"own-validation-{source.name}", lambda: split_faces(model, [source]), cache)


def copy_scores(model: Path, what: str, faces, cache: Path) -> dict:
    """Per copy (as-is and the three door copies): which faces, classifier and geometry scores."""
    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.train.geometry import stage_beside
    from happyhouse.train.label_audit import door_copies, model_contract
    from happyhouse.train.trainer import load_model, predict

    head = model.parent / "geometry_head.npz"
    if not head.is_file():
        raise SystemExit(f"{head} is missing: fit the head first (python -m happyhouse.train.geometry)")
    file = cache / f"{what}-{sha256_file(model)[:12]}-{sha256_file(head)[:12]}.npz"
    if file.is_file():
        z = np.load(file, allow_pickle=False)
        return {k: z[k] for k in z.files}
    names, labels, crops = faces()
    copies = {"as-is": (np.arange(len(crops)), crops)}
    copies.update(door_copies(crops))
    spec, net, stage = model_contract(model), load_model(model), stage_beside(model)[0]
    out = {"names": np.array(names), "labels": np.asarray(labels)}
    for c, (which, images) in copies.items():
        out[f"{c}/which"] = which
        out[f"{c}/classifier"] = predict(net, images, spec)
        out[f"{c}/geometry"] = np.array([stage.score(f) for f in images])
        print(f"{what} {c}: {len(images)} faces scored", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    return out


def fused_copies(scores: dict, w=SHIPPED_WEIGHTS) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{copy: (labels, fused scores)}."""
    from happyhouse.daemon.geometry import fuse

    return {c: (scores["labels"][scores[f"{c}/which"]],
                fuse(scores[f"{c}/classifier"], scores[f"{c}/geometry"], w))
            for c in [k[:-len("/which")] for k in scores if k.endswith("/which")]}


def threshold_rules(copies: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> Dict[str, float]:
    """Study T's rules (reports/README.md, loso/), each "lowest t >= 0.5 with <= 1% false opens" on:
    R0 the validation split as-is (the shipped rule), R1 it and its door copies pooled, R3 each
    copy alone, the lowest of the four."""
    from happyhouse.train.report import choose_threshold

    y, f = copies["as-is"]
    pooled_y = np.concatenate([v[0] for v in copies.values()])
    pooled_f = np.concatenate([v[1] for v in copies.values()])
    return {"R0": choose_threshold(y, f, 0.01),
            "R1": choose_threshold(pooled_y, pooled_f, 0.01),
            "R3": min(choose_threshold(y_c, f_c, 0.01) for y_c, f_c in copies.values())}


def applied(copies: Dict[str, Tuple[np.ndarray, np.ndarray]], threshold: float) -> dict:
    out = {}
    for c, (y, f) in copies.items():
        opened = f >= threshold
        out[c] = {"recall": round(float(opened[y == 1].mean()), 4),
                  "false_open_rate": round(float(opened[y == 0].mean()), 4)}
    out["mean_recall"] = round(float(np.mean([out[c]["recall"] for c in copies])), 4)
    out["worst_false_open_rate"] = max(out[c]["false_open_rate"] for c in copies)
    return out


def direction_figures(scores: dict, audit) -> dict:
    """Per copy and weight: fused AUC by the datasets' labels (and the audited, where reviewed)."""
    from happyhouse.daemon.geometry import fuse
    from happyhouse.train.label_audit import audited_figures

    copies = [k[:-len("/which")] for k in scores if k.endswith("/which")]
    out: Dict[str, dict] = {}
    for w in GRID:
        row = {}
        for c in copies:
            which = scores[f"{c}/which"]
            fused = fuse(scores[f"{c}/classifier"], scores[f"{c}/geometry"], w)
            f = audited_figures([str(n) for n in scores["names"][which]], scores["labels"][which], fused, audit)
            row[c] = {"auc": f["dataset_labels"]["roc_auc"], "auc_audited": f["audited_labels"]["roc_auc"],
                      "recall": f["dataset_labels"]["recall"], "n": f["dataset_labels"]["n"]}
        row["mean_auc"] = round(float(np.mean([row[c]["auc"] for c in copies])), 4)
        row["mean_auc_audited"] = round(float(np.mean([row[c]["auc_audited"] for c in copies])), 4)
        out[name(w)] = row
    return out


def bundle_threshold(model: Path) -> float:
    """The fused threshold the geometry CLI chose for ``model`` (its own validation split)."""
    return float(json.loads((model.parent / "geometry.json").read_text())["threshold"])


def at_own_threshold(scores: dict, model: Path) -> dict:
    """The direction's bundle threshold (fused 0.7:0.3, chosen on its own source's validation
    split for <= 1% false opens) on the held-out source: does a new source's score shift
    make it too strict (recall falls) or too loose (false opens rise)? Descriptive."""
    threshold = bundle_threshold(model)
    per_copy = {c: v for c, v in applied(fused_copies(scores), threshold).items() if isinstance(v, dict)}
    return {"threshold": round(threshold, 4), **per_copy}


def trained_on(model: Path) -> Path:
    """The one source the model was trained on, from its train_meta.json."""
    import os

    sources = json.loads((model.parent / "train_meta.json").read_text())["data"]["sources"]
    if len(sources) != 1:
        raise SystemExit(f"{model} was trained on {len(sources)} sources, not one")
    path = Path(sources[0])
    return path if path.is_dir() else Path(os.environ.get("HAPPYHOUSE_DATA", "../shared/datasets")) / path.name


def study_t(models: Dict[str, Path], held_out: Dict[str, dict], cache: Path, shipped_cache: Path) -> dict:
    """Study T (reports/README.md, loso/): threshold rules from the own validation split and its
    door copies, applied to the held-out source; the shipped bundle's validation false opens."""
    out: dict = {"directions": {}}
    for label, model in models.items():
        rules = threshold_rules(fused_copies(own_validation_scores(model, trained_on(model), cache)))
        target = fused_copies(held_out[label])
        out["directions"][label] = {
            "thresholds": {r: round(t, 4) for r, t in rules.items()},
            "bundle_threshold": round(bundle_threshold(model), 4),
            "held_out": {r: applied(target, t) for r, t in rules.items()}}
    names, labels, copies, geometry = faces_and_geometry(data_paths(), shipped_cache)
    scores = classifier_scores(SHIPPED, copies, shipped_cache)
    from happyhouse.daemon.geometry import fuse

    shipped = {("as-is" if c == "validation" else c): (labels[which], fuse(scores[c], geometry[c], SHIPPED_WEIGHTS))
               for c, (which, _) in copies.items()}
    rules = threshold_rules(shipped)
    out["shipped"] = {r: {"threshold": round(t, 4),
                          "validation": applied({"as-is": shipped["as-is"]}, t)["as-is"]}
                      for r, t in rules.items()}
    d = out["directions"]
    mean = {r: float(np.mean([d[k]["held_out"][r]["mean_recall"] for k in d])) for r in ("R0", "R1", "R3")}
    passing = [r for r in ("R1", "R3")
               if all(d[k]["held_out"][r]["worst_false_open_rate"] <= 0.015 for k in d)
               and mean[r] >= mean["R0"] + 0.02
               and out["shipped"][r]["validation"]["false_open_rate"] <= 0.015]
    best = max(passing, key=mean.get) if passing else None
    out["decision"] = {"mean_held_out_recall": {r: round(v, 4) for r, v in mean.items()},
                       "passing": passing, "chosen": best or "R0", "adopt": best is not None}
    return out


def in_domain(cache: Path, audit) -> dict:
    """The shipped classifier and head on the general validation split at every weight."""
    names, labels, copies, geometry = faces_and_geometry(data_paths(), cache)
    scores = classifier_scores(SHIPPED, copies, cache)
    out = {}
    for w in GRID:
        r = in_domain_judged(names, labels, copies, scores, geometry, audit, w)["validation"]["pooled"]
        out[name(w)] = r
    return out


def decide(directions: Dict[str, dict], shipped: dict) -> dict:
    """The rule, written before the run (reports/README.md, loso/)."""
    base = shipped[name(SHIPPED_WEIGHTS)]
    feasible = [name(w) for w in GRID
                if shipped[name(w)]["auc"] >= base["auc"] - MAX_VALIDATION_AUC_DROP
                and shipped[name(w)]["auc_audited"] >= AUDITED_AUC_FLOOR
                and shipped[name(w)]["recall_audited"] >= AUDITED_RECALL_FLOOR]

    def both(w: str) -> float:
        return float(np.mean([d[w]["mean_auc"] for d in directions.values()]))

    out = {"feasible": feasible,
           "argmax_unconstrained": max((name(w) for w in GRID), key=both),
           "mean_over_directions": {name(w): round(both(name(w)), 4) for w in GRID}}
    if not feasible:
        return {**out, "chosen": None, "adopt": False, "why": "no weight keeps the in-domain floor"}
    best = max(feasible, key=both)
    s = name(SHIPPED_WEIGHTS)
    gain_a = directions["A"][best]["mean_auc"] - directions["A"][s]["mean_auc"]
    gain_b = directions["B"][best]["mean_auc"] - directions["B"][s]["mean_auc"]
    adopt = best != s and gain_a >= MIN_GAIN_A and gain_b >= 0
    return {**out, "chosen": best, "gain_A": round(gain_a, 4), "gain_B": round(gain_b, 4), "adopt": adopt,
            "why": (f"{best}: A {gain_a:+.4f} (>= {MIN_GAIN_A} asked), B {gain_b:+.4f} (>= 0 asked)"
                    if best != s else "the shipped weights are the best feasible")}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--direction", nargs=3, action="append", required=True, metavar=("NAME", "MODEL", "HELD_OUT"),
                   help="a direction: its name (A, B), the model trained without HELD_OUT, the held-out source")
    p.add_argument("--cache", type=Path, default=Path("runs/loso/cache"))
    p.add_argument("--shipped-cache", type=Path, default=Path("runs/classifier-mix"),
                   help="where the shipped model's validation scores are cached")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from happyhouse.train.audits import load_audits

    audit = load_audits([Path(a) for a in AUDITS + ["reports/label-audit/training-audit.json",
                                                    "reports/label-audit/training-audit-round2.json"]])
    directions, stages, held, models = {}, {}, {}, {}
    for label, model, held_out in args.direction:
        scores = held[label] = held_out_scores(Path(model), Path(held_out), args.cache)
        models[label] = Path(model)
        directions[label] = direction_figures(scores, audit)
        stages[label] = {"model": str(model), "held_out": Path(held_out).name,
                         "classifier_alone": directions[label]["1:0"]["mean_auc"],
                         "geometry_alone": directions[label]["0:1"]["mean_auc"],
                         "at_own_threshold": at_own_threshold(scores, Path(model))}
    shipped = in_domain(args.shipped_cache, audit)
    decision = decide(directions, shipped) if {"A", "B"} <= set(directions) else None
    for label, rows in directions.items():
        for w, r in rows.items():
            print(f"{label} {w:>9}  mean {r['mean_auc']:.4f} / {r['mean_auc_audited']:.4f}  "
                  + "  ".join(f"{c} {r[c]['auc']:.4f}" for c in r if isinstance(r[c], dict)))
    for w, r in shipped.items():
        print(f"shipped {w:>9}  validation {r['auc']:.4f} / {r['auc_audited']:.4f}  "
              f"recall {r['recall']:.3f} / {r['recall_audited']:.3f}")
    thresholds = study_t(models, held, args.cache, args.shipped_cache)
    print(json.dumps(stages, indent=1))
    print(json.dumps(decision, indent=1))
    print(json.dumps(thresholds, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "leave-one-source-out: classifier and geometry head trained on one source, judged on "
                    "every face of the other and its door copies, fused at each weight; the shipped model's "
                    "validation figures at the same weights (the in-domain floor)",
            "stages": stages, "directions": directions, "shipped_validation": shipped,
            "decision": decision, "threshold_rules": thresholds}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

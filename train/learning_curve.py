"""How many frames a house needs: the house protocol at several training sizes.

``python -m happyhouse.train.learning_curve --sizes 24 48 72 96 120 --seeds 0 1``

Runs ``happyhouse.train.house_cv`` once per (training frames per fold, seed)
on the same committed folds (``reports/house-cv/folds.json``), each into its
own folder under ``--out``/points, and writes ``learning-curve.json`` and
``learning-curve.png`` from their ``metrics.json``. A point whose
``metrics.json`` exists is reused, so an interrupted curve resumes. Every
option after ``--`` goes to house_cv unchanged (e.g. ``-- --protocol split``);
nothing is tuned here: each point is the protocol as it is.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from happyhouse.daemon.errors import DataError, HappyHouseError, refuse_unless
from happyhouse.daemon.filesafety import path_arg
from happyhouse.daemon.plots import save_figure

log = logging.getLogger("happyhouse.train.learning_curve")
#: the name its one-line errors and Ctrl-C carry (the shared ``happyhouse-...`` form)
PROG = "happyhouse-train-learning-curve"

CURVE_JSON = "learning-curve.json"
CURVE_PNG = "learning-curve.png"
FIGURES = ("accuracy", "errors", "false_opens", "recall", "roc_auc")


def point_dir(out: Path, size: int, seed: int) -> Path:
    return out / "points" / f"n{size:03d}-seed{seed}"


def frames_used(metrics: Dict) -> Optional[float]:
    """The training frames a point's folds really had, on average: ``--train-frames`` is
    asked before the face gate, so a fold keeps only those of them with a face (~117 of 120
    at the Happy House door). None for a report without its folds."""
    used = [f["n_train"] for f in metrics.get("folds") or () if "n_train" in f]
    return float(np.mean(used)) if used else None


def collect(out: Path, sizes: Sequence[int], seeds: Sequence[int]) -> Dict:
    """The curve from the points measured so far (missing points are listed, not guessed)."""
    points, missing = [], []
    for size in sizes:
        for seed in seeds:
            path = point_dir(out, size, seed) / "metrics.json"
            if not path.is_file():
                missing.append({"train_frames": size, "seed": seed})
                continue
            m = json.loads(path.read_text())
            points.append({"train_frames": size, "seed": seed, "n": m["n"],
                           "train_frames_used": frames_used(m),
                           "protocol": m.get("fold_protocol"), "fused": bool(m.get("fusion")),
                           **{k: m.get(k) for k in FIGURES},
                           "seconds": m.get("learning_curve_seconds")})
    summary = []
    for size in sizes:
        at = [p for p in points if p["train_frames"] == size]
        if at:
            used = [p["train_frames_used"] for p in at if p["train_frames_used"] is not None]
            summary.append({"train_frames": size, "seeds": [p["seed"] for p in at],
                            "train_frames_used_mean": float(np.mean(used)) if used else None,
                            **{f"{k}_mean": float(np.mean([p[k] for p in at])) for k in FIGURES},
                            "accuracy_min": float(min(p["accuracy"] for p in at)),
                            "false_opens_max": int(max(p["false_opens"] for p in at))})
    return {"sizes": list(sizes), "seeds": list(seeds), "points": points, "summary": summary,
            "missing": missing}


def plot(curve: Dict, path: Path) -> None:
    from .report import _plt

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for seed in curve["seeds"]:
        pts = sorted((p for p in curve["points"] if p["seed"] == seed),
                     key=lambda p: p["train_frames"])
        if pts:
            # where the point really is: the frames its folds trained on, not those asked for
            x = [p["train_frames"] if p["train_frames_used"] is None else p["train_frames_used"]
                 for p in pts]
            axes[0].plot(x, [100 * p["accuracy"] for p in pts], "o-", ms=4, label=f"seed {seed}")
            axes[1].plot(x, [p["false_opens"] for p in pts], "o-", ms=4, label=f"seed {seed}")
    axes[0].set_ylabel("accuracy on unseen frames (%)")
    axes[1].set_ylabel("false opens (of the not-smiling frames)")
    for ax in axes:
        ax.set_xlabel("training frames per fold with a face (of the house's own)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("House protocol (5-fold CV on the Happy House frames) by training frames",
                 fontsize=9)
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=110)


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.cli_errors import run_main

    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.learning_curve",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[24, 48, 72, 96, 120])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", type=path_arg, default=Path("reports/house-cv"))
    p.add_argument("--folds", type=path_arg, default=Path("reports/house-cv/folds.json"))
    p.add_argument("--plot-only", action="store_true", help="only (re)write the curve from the "
                                                            "points measured so far")
    args = p.parse_args(own)
    return run_main(PROG, lambda: _main(args, passthrough))


def check_point_args(args, passthrough: List[str]) -> None:
    """The house protocol's options after ``--``, read as every point will read them: one
    line for a mistyped one before any point runs (it failed at the first point)."""
    import contextlib
    import io

    from . import house_cv

    heard = io.StringIO()
    try:
        with contextlib.redirect_stderr(heard):
            house_cv.parse_args(["--out", str(args.out), "--folds", str(args.folds),
                                 "--train-frames", str(min(args.sizes)), *passthrough])
    except SystemExit:
        said = [line for line in heard.getvalue().splitlines() if "error:" in line]
        raise DataError("the house protocol's options after --: "
                        + (said[-1].split("error:", 1)[1].strip() if said else "not understood"))


def _measure_point(args, size: int, seed: int, passthrough: List[str]) -> None:
    """One house-CV run into the point's folder (its errors name the point)."""
    from . import house_cv

    folder = point_dir(args.out, size, seed)
    started = time.monotonic()
    point = house_cv.parse_args(["--out", str(folder), "--folds", str(args.folds),
                                 "--seed", str(seed), "--train-frames", str(size),
                                 *passthrough])
    try:
        house_cv.run_house_cv(point)  # its temporary fold-models folder goes with it
    except HappyHouseError as exc:  # the same kind of error, saying which point failed
        raise type(exc)(f"the point n={size} seed={seed}: {exc}") from None
    metrics = folder / "metrics.json"
    try:
        m = json.loads(metrics.read_text())
        m["learning_curve_seconds"] = round(time.monotonic() - started, 1)
        metrics.write_text(json.dumps(m, indent=2) + "\n")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot update {metrics}: {exc}") from None
    log.info("point n=%d seed=%d: accuracy %.4f, %d false opens (%.0f s)", size, seed,
             m["accuracy"], m["false_opens"], m["learning_curve_seconds"])


def _main(args: argparse.Namespace, passthrough: List[str]) -> int:
    from happyhouse.daemon.filesafety import check_creatable

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    check_creatable(args.out, "--out")  # a wrong path is one line before any point runs
    # before any point runs: --sizes 24 0 spent a whole point first, then printed the house
    # protocol's usage under its name
    refuse_unless(((all(size >= 8 for size in args.sizes),
                    f"--sizes must each be at least 8 frames, got {' '.join(map(str, args.sizes))}"),),
                  DataError)
    if not args.plot_only:
        check_point_args(args, passthrough)
        for size in args.sizes:
            for seed in args.seeds:
                if not (point_dir(args.out, size, seed) / "metrics.json").is_file():
                    _measure_point(args, size, seed, passthrough)
    try:
        curve = collect(args.out, args.sizes, args.seeds)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the points under {args.out / 'points'}: {exc}") from None
    if not curve["points"]:
        # a curve of no points would replace the committed one with an empty file
        raise DataError(f"no measured points under {args.out / 'points'} for sizes "
                        f"{list(args.sizes)} and seeds {list(args.seeds)}: nothing written")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / CURVE_JSON).write_text(json.dumps(curve, indent=2) + "\n")
        plot(curve, args.out / CURVE_PNG)
    except OSError as exc:
        raise DataError(f"cannot write the curve into --out {args.out}: "
                        f"{exc.strerror or exc}") from None
    for row in curve["summary"]:
        used = row["train_frames_used_mean"]
        sys.stdout.write(f"{row['train_frames']:4d} frames"
                         + ("" if used is None else f" ({used:.1f} with a face)")
                         + f": accuracy {row['accuracy_mean']:.4f} "
                         f"(min {row['accuracy_min']:.4f}), false opens <= "
                         f"{row['false_opens_max']} over seeds {row['seeds']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

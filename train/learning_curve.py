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

from happyhouse.daemon.errors import HappyHouseError

log = logging.getLogger("happyhouse.train.learning_curve")

CURVE_JSON = "learning-curve.json"
CURVE_PNG = "learning-curve.png"
FIGURES = ("accuracy", "errors", "false_opens", "recall", "roc_auc")


def point_dir(out: Path, size: int, seed: int) -> Path:
    return out / "points" / f"n{size:03d}-seed{seed}"


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
                           "protocol": m.get("fold_protocol"), "fused": bool(m.get("fusion")),
                           **{k: m.get(k) for k in FIGURES},
                           "seconds": m.get("learning_curve_seconds")})
    summary = []
    for size in sizes:
        at = [p for p in points if p["train_frames"] == size]
        if at:
            summary.append({"train_frames": size, "seeds": [p["seed"] for p in at],
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
            x = [p["train_frames"] for p in pts]
            axes[0].plot(x, [100 * p["accuracy"] for p in pts], "o-", ms=4, label=f"seed {seed}")
            axes[1].plot(x, [p["false_opens"] for p in pts], "o-", ms=4, label=f"seed {seed}")
    axes[0].set_ylabel("accuracy on unseen frames (%)")
    axes[1].set_ylabel("false opens (of the not-smiling frames)")
    for ax in axes:
        ax.set_xlabel("training frames per fold (of the house's own)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("House protocol (5-fold CV on the Happy House frames) by training frames",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.learning_curve",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[24, 48, 72, 96, 120])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--out", type=Path, default=Path("reports/house-cv"))
    p.add_argument("--folds", type=Path, default=Path("reports/house-cv/folds.json"))
    p.add_argument("--plot-only", action="store_true", help="only (re)write the curve from the "
                                                            "points measured so far")
    args = p.parse_args(own)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from . import house_cv

    if not args.plot_only:
        for size in args.sizes:
            for seed in args.seeds:
                folder = point_dir(args.out, size, seed)
                if (folder / "metrics.json").is_file():
                    continue
                started = time.time()
                rc = house_cv.main(["--out", str(folder), "--folds", str(args.folds),
                                    "--seed", str(seed), "--train-frames", str(size),
                                    *passthrough])
                if rc != 0:
                    sys.stderr.write(f"learning_curve: the point n={size} seed={seed} failed\n")
                    return rc
                metrics = folder / "metrics.json"
                m = json.loads(metrics.read_text())
                m["learning_curve_seconds"] = round(time.time() - started, 1)
                metrics.write_text(json.dumps(m, indent=2) + "\n")
                log.info("point n=%d seed=%d: accuracy %.4f, %d false opens (%.0f s)", size, seed,
                         m["accuracy"], m["false_opens"], m["learning_curve_seconds"])
    try:
        curve = collect(args.out, args.sizes, args.seeds)
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"learning_curve: cannot read the points: {exc}\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / CURVE_JSON).write_text(json.dumps(curve, indent=2) + "\n")
    if curve["points"]:
        plot(curve, args.out / CURVE_PNG)
    for row in curve["summary"]:
        sys.stdout.write(f"{row['train_frames']:4d} frames: accuracy {row['accuracy_mean']:.4f} "
                         f"(min {row['accuracy_min']:.4f}), false opens <= "
                         f"{row['false_opens_max']} over seeds {row['seeds']}\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HappyHouseError as exc:
        sys.stderr.write(f"learning_curve: {exc}\n")
        sys.exit(2)

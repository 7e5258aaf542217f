"""PNG plots of an evaluation: the ROC curve and a grid of the wrong decisions.

matplotlib is a desktop extra (``happyhouse[train]``): the Pi does not have it,
so it is imported only when a plot is asked for, and its absence is one
clear line (:func:`pyplot`). The trainer's report draws its ROC with the same
:func:`plot_roc`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .errors import ConfigError
from .roc import roc_auc, roc_curve

#: tiles per row of the misses grid, and at most this many tiles
GRID_COLUMNS = 8
GRID_LIMIT = 48


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend; ConfigError when not installed."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("plots need matplotlib, a desktop extra that is not installed here: "
                          "pip install matplotlib (or happyhouse[train]), or leave out --plot") from None
    matplotlib.use("Agg")  # no display on a build machine, a Pi or in CI
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, path: Path, dpi: int) -> Path:
    """``fig`` as a PNG at ``path``, whole or not at all: savefig wrote in place, so a full
    disk left the last good plot cut short (and a traceback). DataError, one line."""
    import io

    from .filesafety import write_file_whole

    png = io.BytesIO()
    try:
        fig.savefig(png, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return write_file_whole(Path(path), png.getvalue(), "plot")


def plot_roc(labels: np.ndarray, scores: np.ndarray, threshold: float, path: Path,
             title: str = "ROC (validation)", pred: Optional[np.ndarray] = None) -> Path:
    """The ROC curve with the operating point (``threshold``, or ``pred`` decisions)."""
    plt = pyplot()
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    fpr, tpr, _ = roc_curve(labels, scores)
    decided = scores >= threshold if pred is None else np.asarray(pred).astype(bool)
    op_fpr = np.sum(decided & ~labels) / max(int(np.sum(~labels)), 1)
    op_tpr = np.sum(decided & labels) / max(int(np.sum(labels)), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.3))
    auc = roc_auc(labels, scores)
    ax.plot(fpr, tpr, lw=2, label=f"AUC = {auc:.4f}" if auc is not None else "ROC")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.plot([op_fpr], [op_tpr], "o", color="red",
            label=f"{'per-fold thresholds' if pred is not None else f'threshold {threshold:.3f}'}"
                  f"\nfalse open {op_fpr:.3%}, recall {op_tpr:.1%}")
    ax.set_xlabel("false-open rate (not happy scored happy)")
    ax.set_ylabel("true-positive rate (smiles accepted)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_figure(plt, fig, path, dpi=110)


def plot_misses(images: Sequence[np.ndarray], results: Sequence, path: Path, threshold: float,
                limit: int = GRID_LIMIT) -> Path:
    """A grid of wrongly decided images (RGB), in the order given (false opens first);
    each tile says the image's id, its label, its score (or no face) and what went wrong.

    ``results`` are :class:`~.evaluate.ImageResult` s (id, label, score, decision).
    """
    plt = pyplot()
    shown = list(zip(images, results))[:limit]
    opens = sum(r.decision == "open" for r in results)
    rows = max(1, int(np.ceil(len(shown) / GRID_COLUMNS)))
    fig, axes = plt.subplots(rows, GRID_COLUMNS, figsize=(GRID_COLUMNS * 1.5, rows * 1.85 + 0.5))
    axes = np.atleast_2d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (image, r) in zip(axes.ravel(), shown):
        ax.imshow(image)
        what = "FALSE OPEN" if r.decision == "open" else "missed smile"
        score = "no face" if r.score is None else f"score {r.score:.3f}"
        name = Path(r.id.split("#")[0]).name + ("#" + r.id.split("#")[1] if "#" in r.id else "")
        ax.set_title(f"{name}\n{'happy' if r.label else 'not_happy'}, {score}\n{what}",
                     fontsize=6.5, color="red" if r.decision == "open" else "darkorange")
    if results:
        head = (f"Wrong decisions at threshold {threshold:.3f}: {opens} false open(s), "
                f"{len(results) - opens} missed smile(s)"
                + (f" (first {len(shown)} shown)" if len(shown) < len(results) else ""))
    else:
        head = f"No wrong decisions at threshold {threshold:.3f}"
    fig.suptitle(head, fontsize=10)
    fig.tight_layout()
    return save_figure(plt, fig, path, dpi=90)

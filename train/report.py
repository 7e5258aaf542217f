"""A report a person can read: metrics.json and PNG plots.

Metrics are computed with numpy (no scikit-learn dependency). The decision
threshold is chosen on VALIDATION scores for a target false-open rate (the
fraction of not-happy faces that would open the door), never on a test set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

# one ROC curve, AUC and ROC plot, shared with happyhouse-eval (Pi side); matplotlib lazily
from happyhouse.daemon.plots import plot_roc, pyplot as _plt, save_figure
from happyhouse.daemon.roc import roc_auc, roc_curve

METRICS_FILE = "metrics.json"
PLOTS = ("learning_curves.png", "roc.png", "confusion_matrix.png", "misclassified.png")


#: this checkout's root, found from any working folder (the project installs editable)
CHECKOUT = Path(__file__).resolve().parents[1]


def recorded_path(path) -> str:
    """How a report or metadata that is committed names a model: repo-relative
    (``models/general/model.keras``) when it lies in this checkout, else by its file
    name alone (the sha256 beside it says which file), never the machine's folders."""
    resolved = Path(path).expanduser().resolve()
    for root in (CHECKOUT, Path.cwd().resolve()):
        try:
            return resolved.relative_to(root).as_posix()
        except ValueError:
            continue
    return resolved.name


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float,
              pred: Optional[np.ndarray] = None) -> Dict[str, int]:
    """Counts; ``pred`` overrides ``scores >= threshold`` (e.g. per-fold thresholds)."""
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) >= threshold if pred is None else np.asarray(pred).astype(bool)
    return {"tp": int(np.sum(pred & labels)), "fp": int(np.sum(pred & ~labels)),
            "tn": int(np.sum(~pred & ~labels)), "fn": int(np.sum(~pred & labels))}


def choose_threshold(labels: np.ndarray, scores: np.ndarray, max_false_open: float) -> float:
    """The lowest threshold whose false-open rate stays <= ``max_false_open``.

    Lowest such threshold = most smiles accepted for the allowed false opens.
    Never below 0.5: a threshold under even odds would open the door for a
    face the model thinks more likely not happy.
    """
    fpr, _, thr = roc_curve(labels, scores)
    ok = np.flatnonzero(fpr <= max_false_open)
    best = float(thr[ok[-1]]) if len(ok) else 1.0
    if not np.isfinite(best):
        best = float(np.nextafter(np.max(scores), np.inf)) if len(scores) else 1.0
    return float(min(max(best, 0.5), 1.0))


def metrics(labels: np.ndarray, scores: np.ndarray, threshold: float,
            pred: Optional[np.ndarray] = None) -> Dict[str, object]:
    c = confusion(labels, scores, threshold, pred)
    n = len(labels)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = c["fp"] + c["tn"]
    return {"n": int(n), "threshold": float(threshold),
            "accuracy": (c["tp"] + c["tn"]) / n if n else 0.0,
            "precision": precision, "recall": recall, "f1": f1,
            "roc_auc": roc_auc(labels, scores),
            "false_open_rate": c["fp"] / negatives if negatives else 0.0,
            "errors": int(c["fp"] + c["fn"]), "false_opens": int(c["fp"]),
            "confusion_matrix": {"labels": ["not_happy", "happy"],
                                 "rows_true_cols_pred": [[c["tn"], c["fp"]], [c["fn"], c["tp"]]],
                                 **c}}


def plot_learning_curves(history: Mapping[str, Sequence[float]], path: Path) -> None:
    plt = _plt()
    keys = [k for k in ("loss", "accuracy", "auc") if k in history]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4.2 * max(len(keys), 1), 3.4))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, keys):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], "o-", ms=3, label="train")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], "o-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=110)


def plot_confusion(m: Mapping, path: Path, title: str = "Confusion matrix (validation)") -> None:
    plt = _plt()
    grid = np.asarray(m["confusion_matrix"]["rows_true_cols_pred"])
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(grid, cmap="Blues")
    names = ["not happy", "happy"]
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{grid[i, j]}", ha="center", va="center", fontsize=14,
                    color="white" if grid[i, j] > grid.max() / 2 else "black")
    ax.set_xticks([0, 1], [f"pred {n}" for n in names])
    ax.set_yticks([0, 1], [f"true {n}" for n in names])
    ax.set_title(f"{title}\nthreshold {m['threshold']:.3f}, accuracy {m['accuracy']:.2%}", fontsize=9)
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=110)


def plot_misclassified(images: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                       threshold: float, path: Path, limit: int = 48,
                       pred: Optional[np.ndarray] = None) -> int:
    """A grid of the worst mistakes (most confident first); returns how many there were."""
    plt = _plt()
    labels = np.asarray(labels)
    pred = (np.asarray(scores) >= threshold if pred is None else np.asarray(pred)).astype(int)
    scores = np.asarray(scores)
    # false opens first (the dangerous mistake), then missed smiles, most confident first
    opens = np.flatnonzero((pred == 1) & (labels == 0))
    missed = np.flatnonzero((pred == 0) & (labels == 1))
    opens = opens[np.argsort(-scores[opens])]
    missed = missed[np.argsort(scores[missed])]
    n_open = min(len(opens), max(limit // 2, limit - len(missed)))
    wrong = np.r_[opens[:n_open], missed[:limit - n_open]].astype(np.int64)
    cols = 8
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.5 + 0.4))
    axes = np.atleast_2d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(images[i])
        kind = "false open" if labels[i] == 0 else "missed smile"
        ax.set_title(f"{kind}\np={scores[i]:.2f}", fontsize=7,
                     color="red" if labels[i] == 0 else "darkorange")
    fig.suptitle(f"Misclassified: {len(opens)} false opens, {len(missed)} missed smiles "
                 f"(most confident {n_open} + {len(wrong) - n_open} shown)"
                 if len(wrong) else "No misclassified images", fontsize=10)
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=80)
    return int(len(wrong))


SUMMARY_FILE = "model_summary.txt"
ARCHITECTURE_PLOT = "architecture.png"


def model_summary(model) -> str:
    """Keras's ``model.summary()`` text, as the tutorial printed it (nested models expanded)."""
    lines: List[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line), expand_nested=True)
    return "\n".join(lines) + "\n"


def _layer_rows(model, depth: int = 0):
    """(indent, name, type, output shape, parameters) for every layer, nested ones indented."""
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            shape = "?"
        yield depth, layer.name, type(layer).__name__, str(tuple(shape)), layer.count_params()
        if hasattr(layer, "layers") and layer.layers:
            yield from _layer_rows(layer, depth + 1)


def plot_architecture(model, path: Path) -> None:
    """The network as a column of boxes, input at the top: type, output shape, parameters."""
    plt = _plt()
    rows = list(_layer_rows(model))
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(rows) + 0.9))
    ax.set_xlim(0, 1)
    ax.set_ylim(len(rows), -1.2)
    ax.axis("off")
    ax.set_title(f"{model.name}: {model.count_params():,} parameters, input "
                 f"{tuple(model.input_shape[1:])}", fontsize=9)
    for i, (depth, name, kind, shape, params) in enumerate(rows):
        x0 = 0.04 + 0.05 * depth
        ax.add_patch(plt.Rectangle((x0, i - 0.36), 0.92 - x0, 0.72, facecolor="#e8f0fb" if depth
                                   else "#dfeedd", edgecolor="#5a6b7b", linewidth=0.8))
        ax.text(x0 + 0.015, i, f"{kind}  ({name})", va="center", fontsize=7.5)
        ax.text(0.94, i, f"{shape}   {params:,} p", va="center", ha="right", fontsize=7)
        if i:
            ax.annotate("", xy=(0.5, i - 0.36), xytext=(0.5, i - 0.64),
                        arrowprops={"arrowstyle": "->", "lw": 0.6})
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=110)


def write_architecture(out: Path, model) -> List[str]:
    """``model_summary.txt`` and ``architecture.png`` in the report folder; returns their names."""
    out = Path(out)
    (out / SUMMARY_FILE).write_text(model_summary(model), encoding="utf-8")
    plot_architecture(model, out / ARCHITECTURE_PLOT)
    return [SUMMARY_FILE, ARCHITECTURE_PLOT]


def write_report(out: Path, history: Mapping[str, Sequence[float]], images: np.ndarray,
                 labels: np.ndarray, scores: np.ndarray, threshold: float,
                 extra: Optional[Mapping] = None, scope: str = "validation",
                 pred: Optional[np.ndarray] = None) -> Dict[str, object]:
    """Write metrics.json and every plot into ``out``; return the metrics dict.

    ``pred`` (0/1 per image) replaces ``scores >= threshold`` where each image
    had its own threshold (cross-validation folds).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    at_threshold = metrics(labels, scores, threshold, pred)
    report: Dict[str, object] = {"scope": scope, **at_threshold,
                                 "at_0.5": metrics(labels, scores, 0.5)}
    if extra:
        report.update(extra)
    if history:
        plot_learning_curves(history, out / PLOTS[0])
    plot_roc(labels, scores, threshold, out / PLOTS[1], title=f"ROC ({scope})", pred=pred)
    plot_confusion(at_threshold, out / PLOTS[2], title=f"Confusion matrix ({scope})")
    plot_misclassified(images, labels, scores, threshold, out / PLOTS[3], pred=pred)
    report["plots"] = [p for p in PLOTS if (out / p).exists()]
    with open(out / METRICS_FILE, "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=False, default=_jsonable)
        handle.write("\n")
    return report


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def history_lists(history: Mapping) -> Dict[str, List[float]]:
    return {k: [float(v) for v in vals] for k, vals in history.items()}

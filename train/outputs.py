"""Where a desktop run's outputs go: written into private folders beside them and
published whole, so that an interrupted run leaves the folders it would have replaced
as they were (training, soup and the house protocol's report share it). No TensorFlow.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: the trained model's file in a model folder
MODEL_FILE = "model.keras"

#: files fitted to one particular model.keras: a new model in the folder makes them wrong
#: (the geometry stage's fused threshold was chosen with the old classifier's scores)
FITTED_TO_THE_MODEL = ("geometry.json", "geometry_head.npz")


def publish(staged: Path, out: Path) -> None:
    """Move a finished run's files from ``staged`` into ``out``.

    Training writes into a private folder beside ``out`` and only a finished run
    reaches ``out``: an interrupted one left a new ``model.keras`` beside the old
    ``train_meta.json`` (whose threshold the converter then shipped). Files of the
    model being replaced that were fitted to it go first; files of ``out`` the run
    does not write (notes) stay.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in FITTED_TO_THE_MODEL:
        if (out / name).is_file() and not (staged / name).exists():
            (out / name).unlink()
            # a warning: --quiet runs said nothing of a geometry stage gone
            log.warning("removed %s: it was fitted to the model this run replaces (fit the "
                        "geometry stage again for the new model)", out / name)
    names = sorted(p.name for p in staged.iterdir())
    for name in sorted(names, key=lambda n: n == MODEL_FILE):  # the model last
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged / name, target)


def remove_empty(folders) -> None:
    """Remove those of ``folders`` that are empty, deepest first (an interrupted run left
    its new --out and --report behind, empty)."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone: leave it
            pass


@contextmanager
def staged_outputs(folders):
    """(staged model folder, staged report folder, model folder, report folder) for a run
    whose outputs are ``folders`` ((what, model folder), (what, report folder)), made.

    The run writes into private folders beside each output; only a run that finishes
    reaches them (:func:`publish`). An interrupted one left a new ``model.keras`` beside
    the old ``train_meta.json`` (whose threshold the converter then shipped), and its
    first run left empty output folders: those it made are removed again.
    """
    from happyhouse.daemon.filesafety import make_folder

    new = [p for _, folder in folders
           for p in (Path(folder).absolute(), *Path(folder).absolute().parents) if not p.exists()]
    finished = False
    staged = []
    try:
        final_out, final_report = (make_folder(folder, what) for what, folder in folders)
        staged.append(Path(tempfile.mkdtemp(prefix=f".{final_out.name}.training.",
                                            dir=final_out.parent)))
        if final_report != final_out:
            staged.append(Path(tempfile.mkdtemp(prefix=f".{final_report.name}.training.",
                                                dir=final_report.parent)))
        out, report_dir = staged[0], staged[-1]
        yield out, report_dir, final_out, final_report
        publish(out, final_out)
        if report_dir != out:
            publish(report_dir, final_report)
        finished = True
    finally:
        for folder in staged:
            shutil.rmtree(folder, ignore_errors=True)
        if not finished:
            remove_empty(new)


@contextmanager
def staged_output(what: str, folder):
    """The private folder beside ``folder`` (made) for a run with one output, a report:
    published whole into ``folder`` only if the run finishes (:func:`staged_outputs`)."""
    with staged_outputs(((what, folder), (what, folder))) as (staged, _, _, _):
        yield staged

"""A bundle folder swapped while the door loads it (a rollback or install landing during a
reload or start): every file the load reads comes from one bundle. Found by a race probe:
the network of one bundle was served with the model.json, threshold and golden vectors of
another, and the fingerprint of the wrong one hid a later install from every reload."""

import hashlib
import json
import os
import shutil

from gpiozero.pins.mock import MockFactory

from happyhouse.daemon import pipeline as pipeline_module
from happyhouse.daemon.bundle import META_FILE, MODEL_FILE, default_bundle_path
from happyhouse.daemon.config import load_config
from happyhouse.daemon.fakes import FakeSource
from happyhouse.daemon.model_history import fingerprint
from happyhouse.daemon.pipeline import Pipeline
from happyhouse.daemon.service import Service


def _two_bundles(tmp_path):
    """(X, Y, where Y is renamed to): X the shipped bundle; Y a copy whose model file is
    not a network at all, so a load that reads any of Y's files fails or says so."""
    dest, other = tmp_path / "bundle", tmp_path / "bundle.new"
    shutil.copytree(default_bundle_path(), dest)
    shutil.copytree(default_bundle_path(), other)
    (other / MODEL_FILE).write_bytes(b"not a network")
    meta = json.loads((other / META_FILE).read_text())
    meta["threshold"] = 0.97
    (other / META_FILE).write_text(json.dumps(meta))
    return dest, other


def _swap_during_the_load(monkeypatch, dest, other):
    """Rename ``other`` into ``dest``'s place right after the bundle's model.json was read,
    as install.sh and --rollback-model do (the window is widened to the whole load)."""
    real = pipeline_module.require_evidence

    def then_swap(bundle):
        os.replace(dest, dest.with_name("bundle.previous"))
        os.replace(other, dest)
        return real(bundle)

    monkeypatch.setattr(pipeline_module, "require_evidence", then_swap)


def test_a_bundle_swapped_while_it_loads_is_served_whole_from_the_folder_first_read(
        tmp_path, monkeypatch):
    dest, other = _two_bundles(tmp_path)
    shipped = json.loads((dest / META_FILE).read_text())
    _swap_during_the_load(monkeypatch, dest, other)
    pipe = Pipeline.from_config(load_config(None, {"model.bundle": str(dest)}))
    # the network, the threshold and the golden vectors all of the bundle read first
    assert pipe.threshold == shipped["threshold"] and pipe.bundle.sha256 == shipped["sha256"]
    assert hashlib.sha256((pipe.bundle.files / MODEL_FILE).read_bytes()).hexdigest() == \
        shipped["sha256"]
    assert pipe.bundle.model_path == dest / MODEL_FILE  # by its own path for people
    assert pipe.bundle.path == dest  # named by its path in every message and log


def test_the_fingerprint_is_the_loaded_bundle_s_so_a_later_install_is_not_skipped(
        tmp_path, monkeypatch):
    dest, other = _two_bundles(tmp_path)
    shipped_fingerprint = fingerprint(dest)
    cfg = load_config(None, {"model.bundle": str(dest), "latch.gpio": "mock",
                             "service.state_dir": str(tmp_path / "state")})
    service = Service.from_config(cfg, lambda: cfg, pin_factory=MockFactory(),
                                  source=FakeSource([], loop=True))
    _swap_during_the_load(monkeypatch, dest, other)
    service.parts._build_pipeline(cfg, changed=True)
    assert service.parts.pipeline.bundle.fingerprint == shipped_fingerprint
    assert service.parts.model_fingerprint == shipped_fingerprint != fingerprint(dest)


def test_messages_name_the_bundle_not_the_folder_held_open(tmp_path, monkeypatch):
    """A review: a model.json the service cannot read, a mesh of the wrong hash and a model
    file gone mid-load were named /proc/self/fd/N/... in the one line a technician sees."""
    import errno
    from pathlib import Path

    import pytest

    from happyhouse.daemon.bundle import load_bundle
    from happyhouse.daemon.errors import ModelError
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh
    from happyhouse.daemon.runtime import Classifier

    dest, _ = _two_bundles(tmp_path)
    real = Path.read_bytes

    def unreadable(self):
        if self.name == META_FILE:
            raise OSError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", unreadable)
    with pytest.raises(ModelError) as refused:
        load_bundle(dest)
    monkeypatch.undo()
    assert str(dest / META_FILE) in str(refused.value) and "/proc/" not in str(refused.value)
    assert "Permission denied" in str(refused.value)
    with pytest.raises(ModelError) as refused:
        FaceMesh(ASSET_DIR / MESH_FILE, "0" * 64, shown=dest / MESH_FILE)
    assert str(dest / MESH_FILE) in str(refused.value)
    with pytest.raises(ModelError, match=f"model file {dest / MODEL_FILE} does not exist"):
        Classifier(tmp_path / "gone" / MODEL_FILE, label=str(dest / MODEL_FILE))


def test_a_copied_or_pickled_bundle_never_reads_through_a_closed_folder(tmp_path):
    import copy
    import gc
    import pickle

    from happyhouse.daemon.bundle import load_bundle

    dest, _ = _two_bundles(tmp_path)
    original = load_bundle(dest)
    deep = copy.deepcopy(original)
    pickled = pickle.loads(pickle.dumps(original))
    del original
    gc.collect()
    assert (deep.files / META_FILE).is_file()  # the same held folder, still open
    assert pickled.files == dest and (pickled.files / META_FILE).is_file()  # by name

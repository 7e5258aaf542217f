"""Test fakes shared across test folders (``tests/`` is put on ``sys.path`` by
``tests/conftest.py`` because pytest runs with importlib mode).

* :func:`clocked_factory`: gpiozero mock pins that time-stamp their changes with a given clock
* :class:`FixedGate`: a face gate that always answers the same box
* :func:`flat_image`, :func:`replay_cfg`: one-colour frames and a config that replays
  pictures fast (the frame-source and device tests)
* :func:`fake_latch_timers`: the latch's relock timer on a :class:`FakeClock` (shipped in
  ``happyhouse.daemon.fakes`` with :class:`FakeSource`), not on wall time
* :class:`ScriptedFrame`, :class:`ScriptedSource`, :class:`ScriptedPipeline`,
  :class:`Recorder`, :func:`make_cfg`, :func:`open_times`, :func:`on_intervals`: a door
  loop driven frame by frame on fake time (the Door state machine tests, the service tests
  and the reliability rig)
* :func:`reseal_bundle`: a written bundle edited and resealed (the checks behind its seal)
* :func:`geometry_bundle`: the shipped classifier with a geometry stage fitted on real faces
"""

import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, List, NamedTuple, Optional, Tuple

import numpy as np
from gpiozero.pins.mock import MockFactory, MockPin, PinState

from happyhouse.daemon.config import load_config
from happyhouse.daemon.fakes import FakeClock, FakeTimer  # noqa: F401  (one fake time, shipped)
from happyhouse.daemon.pipeline import Observation
from happyhouse.daemon.sources import Frame

#: the scripted camera's frame rate
FPS = 10.0
#: the face every scripted frame but a faceless one has
BOX = (100, 80, 120, 120)


def clocked_factory(clock: Callable[[], float]) -> MockFactory:
    """A MockFactory whose pins time-stamp their changes with ``clock``."""

    class ClockedPin(MockPin):
        def _change_state(self, value):
            if self._state != value:
                t = clock()
                self._state = value
                self.states.append(PinState(t - self._last_change, value))
                self._last_change = t
                return True
            return False

        def clear_states(self):
            self._last_change = clock()
            self.states = [PinState(0.0, self._state)]

    return MockFactory(pin_class=ClockedPin)


class FixedGate:
    """A face gate that always answers ``box`` (None = no face); counts its calls."""

    description = "fixed"
    faces_seen = 1

    def __init__(self, box):
        self.box, self.calls = box, 0

    def find(self, frame):
        self.calls += 1
        return self.box

    def why_no_face(self, frame):
        return "the fixed gate answers no face"


# -- frames and devices ---------------------------------------------------------------------
def flat_image(value, h=48, w=64):
    """An ``h`` x ``w`` BGR uint8 image of one value: frames told apart by one pixel."""
    return np.full((h, w, 3), value, np.uint8)


def replay_cfg():
    """The default config with pictures replayed at 50 fps, so source tests wait little."""
    return load_config(None, {"camera.fps": 50.0})


# -- the door loop on fake time --------------------------------------------------------------
@contextmanager
def fake_latch_timers(clock: FakeClock):
    """The latch module's ``threading.Timer`` runs on ``clock`` inside this block."""
    import happyhouse.daemon.latch as latch_mod

    shim = types.SimpleNamespace(RLock=threading.RLock, Timer=FakeTimer)
    saved, saved_clock = latch_mod.threading, FakeClock.active
    latch_mod.threading, FakeClock.active = shim, clock
    try:
        yield clock
    finally:
        latch_mod.threading, FakeClock.active = saved, saved_clock


def open_times(pin, t0):
    """[(opened_at, closed_at)] relative to t0 from a pin's state history (finished ones)."""
    done = on_intervals(pin, t0)
    if pin.states[-1].state:
        done = done[:-1]  # still open
    return [(round(a - t0, 3), round(b - t0, 3)) for a, b in done]


@dataclass(frozen=True)
class ScriptedFrame(Frame):
    """A frame that carries what scoring it will say and cost."""

    kind: str = "-"  # H happy face, n unhappy face, - no face (given by keyword: Frame has
    # fields of its own with defaults)
    latency: float = 0.02  # what scoring it will cost (fake seconds)


class ScriptedSource:
    """Script items: 'H' happy face, 'n' unhappy face, '-' no face, '.' no frame
    (the camera stalls for one timeout); a tuple (kind, age) delivers an old frame.
    ``hooks[i]`` runs just before item i is delivered."""

    description = "scripted"

    def __init__(self, clock, script, hooks=None, fps=FPS):
        self.clock = clock
        self.items = list(script)
        self.hooks = dict(hooks or {})
        self.dt = 1.0 / fps
        self.index = 0
        self.opened = 0
        self.closed = 0
        self.image = np.zeros((48, 64, 3), np.uint8)

    def open(self):
        self.opened += 1

    def close(self):
        self.closed += 1

    def latest(self, timeout):
        if self.index in self.hooks:
            self.hooks.pop(self.index)()
        if self.index >= len(self.items):
            self.clock.advance(timeout)
            return None
        item = self.items[self.index]
        self.index += 1
        kind, age = item if isinstance(item, tuple) else (item, 0.0)
        if kind == ".":
            self.clock.advance(timeout)
            return None
        self.clock.advance(self.dt)
        return ScriptedFrame(self.image, self.clock() - age, self.index, kind=kind)

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class ScriptedPipeline:
    """Scores a :class:`ScriptedFrame` by its ``kind`` after its ``latency`` (or the
    pipeline's ``latency``, when set); records (frame, decision time) per call;
    ``fail_next`` is raised by the next call."""

    model_sha256 = "f" * 64

    def __init__(self, clock, latency: Optional[float] = None):
        self.clock = clock
        self.latency = latency
        self.observed: List[Tuple[ScriptedFrame, float]] = []
        self.fail_next: Optional[BaseException] = None

    def observe(self, frame):
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        latency = frame.latency if self.latency is None else self.latency
        self.clock.advance(latency)
        self.observed.append((frame, self.clock()))
        face = None if frame.kind == "-" else BOX
        score = None if face is None else (0.93 if frame.kind == "H" else 0.08)
        return Observation(frame.timestamp, frame.seq, face, score, frame.kind == "H",
                           latency * 1000)


class Sent(NamedTuple):
    at: float  # clock time
    step: int  # the caller's step counter (0 without one)
    thread: str
    text: str


class Recorder:
    """A notify sender that records what was sent (the real socket is tested separately);
    ``check(message)`` runs on each message (the reliability rig checks the latch)."""

    def __init__(self, clock, step: Callable[[], int] = lambda: 0,
                 check: Optional[Callable[[str], None]] = None):
        self.clock, self.step, self.check = clock, step, check
        self.messages: List[Sent] = []

    def __call__(self, message):
        self.messages.append(Sent(self.clock(), self.step(), threading.current_thread().name,
                                  message))
        if self.check is not None:
            self.check(message)
        return True

    def times(self, line):
        return [m.at for m in self.messages if line in m.text.splitlines()]

    def in_step(self, step):
        return [m.text for m in self.messages if m.step == step]


def on_intervals(pin, t0: float, now: Optional[float] = None) -> List[Tuple[float, float]]:
    """[(on_at, off_at)] in absolute fake time from a clocked pin; an opening still
    in progress ends at ``now``."""
    t, out, opened = t0, [], None
    for delta, state in pin.states[1:]:
        t += delta
        if state and opened is None:
            opened = t
        elif not state and opened is not None:
            out.append((opened, t))
            opened = None
    if opened is not None:
        out.append((opened, now if now is not None else t))
    return out


def make_cfg(tmp_path, **values):
    """A mock-latch config: open 5 s, 3 s cooldown, 3 happy votes of 5; ``values`` override."""
    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state"),
            "decision.unlock_seconds": 5.0, "decision.cooldown_seconds": 3.0,
            "decision.votes_needed": 3, "decision.window": 5}
    base.update(values)
    return load_config(None, base)


def classifier_only_bundle(folder):
    """The shipped classifier as a format-1 bundle: no geometry stage, no light normalisation.

    For tests of the pipeline's mechanics with a fake classifier, where the
    shipped bundle's geometry stage would need its real mesh and head.
    """
    from pathlib import Path

    from happyhouse.daemon.bundle import load_bundle, write_bundle

    shipped = load_bundle(None)
    meta = {k: v for k, v in shipped.meta.items()
            if k not in ("format", "format_version", "model_file", "sha256", "golden", "geometry")}
    meta["preprocess"] = {k: v for k, v in meta["preprocess"].items() if k != "normalize"}
    inputs, outputs = shipped.golden()
    return write_bundle(Path(folder) / "classifier-only", shipped.model_path.read_bytes(), meta,
                        inputs, outputs)


_PLAIN = []


def plain_bundle():
    """:func:`classifier_only_bundle`, written once per test process (a temporary folder)."""
    import tempfile

    if not _PLAIN:
        _PLAIN.append(classifier_only_bundle(tempfile.mkdtemp(prefix="happyhouse-plain-")))
    return _PLAIN[0]


def reseal_bundle(root) -> None:
    """After editing a written bundle, update its manifest and seal as a forger would, so a
    test reaches the check behind the seal (shape, golden outputs, geometry spec)."""
    import json

    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.daemon.bundleschema import seal

    meta_path = root / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["files"] = {name: sha256_file(root / name) for name in meta["files"]}
    meta["meta_sha256"] = seal(meta)
    meta_path.write_text(json.dumps(meta))


def forbid(monkeypatch, module, names, message: str) -> None:
    """Each of ``module``'s ``names`` raises AssertionError(message) if anything calls it."""
    def refuse(*args, **kwargs):
        raise AssertionError(message)

    for name in names:
        monkeypatch.setattr(module, name, refuse)


def one_error_line(err: str, prog: str, *words: str, alone: bool = True) -> str:
    """A tool's stderr holds exactly one ``PROG: error: ...`` line naming ``words`` and no
    traceback (``alone``: and nothing else); returns that line."""
    lines = [line for line in err.splitlines() if line.startswith(f"{prog}: ")]
    assert "Traceback" not in err and len(lines) == 1, err
    assert not alone or err.count("\n") == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    for word in words:
        assert word in lines[0], err
    return lines[0]


def _geometry_head(tmp_path, faces, mesh):
    """A head that is real enough: fitted by least squares on the real faces' features."""
    from happyhouse.daemon.geometry import HEAD_FILE, GeometryHead, features

    x = np.stack([features(mesh.points(f)) for f in faces.images])
    y = faces.labels * 2.0 - 1.0
    w = np.linalg.lstsq(x - x.mean(0), y, rcond=None)[0]
    head = GeometryHead(weights=w, bias=float(-x.mean(0) @ w))
    head.save(tmp_path / HEAD_FILE)
    return head


def geometry_bundle(tmp_path, faces, mesh, **spec_changes):
    """The shipped classifier re-written as a bundle with a geometry stage (format 2; 4 with
    ``level=``): ``faces`` real faces (a Dataset), ``mesh`` a FaceMesh; ``spec_changes``
    replace fields of model.json's geometry section."""
    import hashlib

    from happyhouse.daemon.bundle import load_bundle, write_bundle
    from happyhouse.daemon.geometry import (HEAD_FILE, MESH_FILE, MESH_SHA256, Geometry,
                                            GeometrySpec)

    shipped = load_bundle(None)
    head = _geometry_head(tmp_path, faces, mesh)
    head_bytes = (tmp_path / HEAD_FILE).read_bytes()

    spec = GeometrySpec(mesh_file=MESH_FILE, mesh_sha256=MESH_SHA256, head_file=HEAD_FILE,
                        head_sha256=hashlib.sha256(head_bytes).hexdigest())
    geometry = Geometry(spec, mesh, head)
    crops = faces.images[:3]
    meta = {k: v for k, v in shipped.meta.items()
            if k not in ("format", "format_version", "model_file", "sha256", "golden")}
    meta["geometry"] = {**spec.to_dict(), **spec_changes}
    inputs, outputs = shipped.golden()
    return write_bundle(tmp_path / "bundle", shipped.model_path.read_bytes(), meta, inputs, outputs,
                        extra_files={HEAD_FILE: head_bytes},
                        golden_extra={"geometry_inputs": crops,
                                      "geometry_scores": np.array([geometry.score(c) for c in crops])})

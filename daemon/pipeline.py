"""From a frame to a verdict: face gate -> preprocessing -> int8 model -> threshold.

A bundle with a geometry stage (``model.json`` ``geometry``) also scores the
face's shape (``geometry.py``: face mesh on the same crop before light
normalisation, aligned points, logistic head) and the verdict's score is the
fusion of the two; ``Observation.parts`` keeps both for the reports.

One :class:`Pipeline` is what the door service, ``--once``, ``--check`` and
``happyhouse-eval`` all run, so the numbers ``happyhouse-eval`` reports are
the door's numbers. It refuses to exist unless the bundle's golden vectors
are reproduced by this machine's runtime (``Pipeline.from_config``).

No face, no score: the model is never invoked on a frame without a face, not
even in the bundle's ``frame`` crop mode (where the model sees the whole
frame but a face must still be present).
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from .bundle import Bundle, load_bundle
from .errors import DataError, ModelError
from .evidence import evidence_problems, false_open_at, require_threshold
from .facegate import FaceGate
from .geometry import DegenerateMesh
from .preprocess import Box, check_frame, normalize_light, prepare_frame
from .sources import Frame

log = logging.getLogger(__name__)


#: the steps :meth:`Pipeline.score_face` marks as each ends, in their order (the stage
#: names of :attr:`Observation.stages`, and what ``happyhouse-bench`` times)
SCORE_STEPS = ("level", "prepare", "model", "geometry")


@dataclass(frozen=True)
class Observation:
    timestamp: float  # the frame's capture time (time.monotonic())
    seq: int
    face: Optional[Box]
    score: Optional[float]
    happy: bool
    latency_ms: float  # gate + preprocessing + model, this call
    stages_ms: Dict[str, float] = field(default_factory=dict, compare=False)
    #: the scores that were fused into ``score`` (``classifier``, ``geometry``), if fused
    parts: Dict[str, float] = field(default_factory=dict, compare=False)
    #: how many faces the gate saw (``face`` is the largest): more than one is said in the log
    faces: int = field(default=0, compare=False)

    def to_dict(self) -> dict:
        return {"face": list(self.face) if self.face is not None else None, "faces": self.faces,
                "score": None if self.score is None else round(float(self.score), 6),
                "happy": bool(self.happy), "latency_ms": round(self.latency_ms, 3),
                "stages_ms": {k: round(v, 3) for k, v in self.stages_ms.items()},
                "parts": {k: round(float(v), 6) for k, v in self.parts.items()},
                "seq": self.seq}


def require_evidence(bundle: Bundle) -> None:
    """ModelError unless the bundle's recorded validation figures show it tells smiles from
    non-smiles: ``--check`` said "too poor to arm" of a bundle the service, a reload and the
    installer's ``--verify-model`` armed anyway."""
    problems = evidence_problems(bundle.meta)
    if problems:
        raise ModelError(f"{bundle.path}: recorded validation figures too poor to arm a door: "
                         + "; ".join(problems) + "; rebuild it from more frames (happyhouse-adapt "
                         "needs >= 100 face frames), put the previous bundle back "
                         "(happyhouse-daemon --rollback-model) or clear [model] bundle to serve "
                         "the shipped model")


def _check_override(bundle: Bundle, threshold: float) -> None:
    """Refuse a configured threshold under the bundle's floor; say what a lower one costs."""
    require_threshold(bundle.meta, threshold, "[model] threshold (config file or --threshold)")
    if threshold < bundle.threshold:
        rate = false_open_at(bundle.meta, threshold)
        cost = ("" if rate is None else
                f": {rate:.1%} of the non-smiling faces of its validation hold-out score that high")
        log.warning("threshold %.3f overrides the bundle's validated %.3f%s", threshold,
                    bundle.threshold, cost)


class Pipeline:
    def __init__(self, bundle: Bundle, classifier, gate: FaceGate,
                 threshold: Optional[float] = None, geometry=None) -> None:
        self.bundle = bundle
        self.classifier = classifier
        self.gate = gate
        if bundle.geometry is not None and geometry is None:
            raise ModelError(f"{bundle.path} fuses a geometry stage: load it "
                            f"(Bundle.geometry_stage) before scoring with this bundle")
        self.geometry = geometry
        self.degenerate_meshes = 0  # frames whose face mesh had no shape (each scored 0)
        self.threshold = float(bundle.threshold if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise DataError(f"threshold must be within 0..1, got {self.threshold}")
        self.preprocess = bundle.preprocess

    @classmethod
    def from_config(cls, cfg, bundle: Optional[Bundle] = None, door: bool = True) -> "Pipeline":
        """Load the bundle, its classifier (self-tested) and the face gate from ``cfg``.

        ``door``: a threshold from the config or ``--threshold`` must clear the bundle's
        floor (the door, ``--once``, ``--check``). Only a measuring tool that never drives
        the latch (``happyhouse-eval``) passes False to score at any threshold.
        """
        bundle = bundle if bundle is not None else load_bundle(cfg.model_bundle or None)
        if door:
            require_evidence(bundle)
        if door and cfg.model_threshold is not None:
            _check_override(bundle, cfg.model_threshold)
        classifier = bundle.classifier(threads=cfg.model_threads)
        checked = bundle.self_test(classifier)  # raises SelfTestError: never arm a wrong model
        geometry = bundle.geometry_stage(threads=cfg.model_threads)
        if geometry is not None:
            checked += bundle.self_test_geometry(geometry)
        gate = FaceGate.from_config(cfg)
        pipeline = cls(bundle, classifier, gate, cfg.model_threshold, geometry)
        log.info("model %s (sha256 %s) on %s (%s): self-test passed (%d golden vectors); "
                 "threshold %.3f; %s; face gate %s", bundle.path, bundle.sha256[:12],
                 classifier.runtime_label, platform.machine(), checked, pipeline.threshold,
                 pipeline.stages, gate.description,
                 extra={"journal": {"model_sha256": bundle.sha256, "runtime": classifier.runtime,
                                    "runtime_version": classifier.runtime_version}})
        return pipeline

    @property
    def stages(self) -> str:
        """What scores a face, in words: the classifier's input and any geometry stage."""
        light = ("" if self.preprocess.normalize == "none"
                 else f", light normalisation {self.preprocess.normalize}")
        words = f"int8 classifier on the {self.preprocess.size} px face crop{light}"
        if self.geometry is not None:
            words += "; " + self.geometry.description
        return words

    @property
    def model_sha256(self) -> str:
        return self.bundle.sha256

    @property
    def runtime(self) -> str:
        return self.classifier.runtime

    @property
    def runtime_label(self) -> str:
        return self.classifier.runtime_label

    def observe(self, frame: Frame) -> Observation:
        """Gate, crop and score one frame (DataError for a frame of the wrong shape/dtype)."""
        image = check_frame(frame.image)
        t0 = time.perf_counter()
        face = self.gate.find(image)
        t1 = time.perf_counter()
        stages = {"gate": (t1 - t0) * 1000.0}
        if face is None:
            return Observation(frame.timestamp, frame.seq, None, None, False, stages["gate"], stages)
        # the detector's eye line, where it has one (a fake gate in a test may know none)
        score, parts = self._score(image, face, stages, t1, getattr(self.gate, "eye_roll", None))
        return Observation(frame.timestamp, frame.seq, face, score, self.decide(score),
                           (time.perf_counter() - t0) * 1000.0, stages, parts,
                           faces=max(1, self.gate.faces_seen))

    def _score(self, image: np.ndarray, box: Box, stages: Dict[str, float], started: float,
               eye_roll: Optional[float] = None):
        """:meth:`score_face`, adding each step's milliseconds to ``stages`` (the first
        step counted from ``started``, when the crop began)."""
        last = [started]

        def mark(step: str) -> None:
            now = time.perf_counter()
            stages[step] = (now - last[0]) * 1000.0
            last[0] = now

        return self.score_face(image, box, eye_roll, mark)

    def score_face(self, image: np.ndarray, box: Box, eye_roll: Optional[float] = None,
                   mark: Callable[[str], None] = lambda step: None):
        """(score, parts) of the face in ``box`` of a checked BGR frame: the door's steps.

        ``mark(step)`` is called as each step ends, in this order: ``level`` (a bundle that
        levels: the crop cut, turned for a rolled head, and its mesh), ``prepare`` (the crop
        cut unless levelled, and its light normalisation), ``model`` (the classifier: its
        input quantized, the invoke, its output read), ``geometry`` (a bundle with a
        geometry stage: its score and the fusion). ``happyhouse-bench`` times the steps
        through it, so it measures the code the door runs. ``eye_roll``: the detector's
        roll of this face, where it found one.
        """
        contract, points = self.preprocess.geometric(), None
        if self.geometry is not None and self.geometry.levels:
            crop, points, _ = self.geometry.level(image, box, contract, eye_roll)
            mark("level")
        else:
            crop = prepare_frame(image, box, contract)
        model_input = normalize_light(crop, self.preprocess)
        mark("prepare")
        appearance = self.classifier.score(model_input)
        mark("model")
        if self.geometry is None:
            return appearance, {}
        try:
            shape = (self.geometry.score(crop) if points is None
                     else self.geometry.score_points(points))
        except DegenerateMesh as exc:
            shape = None
            self.degenerate_meshes += 1
            (log.warning if self.degenerate_meshes == 1 else log.debug)(
                "%s: this frame scores 0, whatever its appearance (%d such frames so far)",
                exc, self.degenerate_meshes)
        mark("geometry")
        if shape is None:
            # no shape, no decision: 0 fails closed. Fusing a shape score of 0 did not (an
            # appearance of 0.9975 or more still opened at 0.7:0.3), and raising ended the
            # service (a model error is fatal) for one odd frame
            return 0.0, {"classifier": appearance, "geometry": 0.0}
        return self.geometry.fuse(appearance, shape), {"classifier": appearance, "geometry": shape}

    def decide(self, score: Optional[float]) -> bool:
        return score is not None and bool(np.isfinite(score)) and score >= self.threshold

    def observe_crop(self, face_bgr: np.ndarray, seq: int = 0) -> Observation:
        """An image that already is a face crop (GENKI, SMILE): the whole image is the box.

        Skips the gate only; preprocessing, model and threshold are the door's.
        """
        image = check_frame(np.ascontiguousarray(face_bgr))
        box = (0, 0, image.shape[1], image.shape[0])
        t0 = time.perf_counter()
        stages: Dict[str, float] = {}
        score, parts = self._score(image, box, stages, t0)
        return Observation(time.monotonic(), seq, box, score, self.decide(score),
                           (time.perf_counter() - t0) * 1000.0, stages, parts, faces=1)

    def observe_image(self, image_bgr: np.ndarray, timestamp: Optional[float] = None,
                      seq: int = 0) -> Observation:
        """The same on a bare BGR image (``happyhouse-eval``, tools)."""
        ts = time.monotonic() if timestamp is None else timestamp
        return self.observe(Frame(image_bgr, ts, seq))

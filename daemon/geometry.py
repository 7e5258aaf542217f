"""Face geometry: a second, light-independent opinion on the smile.

The int8 classifier judges a face by its pixels, and pixels are what change
most between the faces it learnt from and a door it has never seen (light,
blur, camera). The shape of a smile does not change with the camera: mouth
corners pulled up and out, lips parted, cheeks raised. This stage measures
that shape and scores it, and the bundle fuses the two scores.

Steps, all recorded in the bundle's ``model.json`` (``geometry``):

1. landmarks: MediaPipe's face mesh (``face_landmark.tflite``, 468 points,
   Apache-2.0, shipped in ``models/facemesh/``) on the contract's face crop
   *before* light normalisation, edge-padded by :data:`MESH_PAD` of its side
   on every side (the mesh expects a face framed with margin, as MediaPipe's
   own graph frames it), resized to 192x192, RGB in [0, 1];
2. alignment (``eye-corners``): points rotated so the outer eye corners
   (:data:`EYE_OUTER`) are level, centred on their midpoint and scaled by
   their distance: head tilt, face size and position drop out;
3. features (``aligned-xy``): the aligned x, y of every point (936 numbers);
4. head: logistic regression on those features (``geometry_head.npz``:
   weights and bias over the raw aligned features, standardisation folded in);
5. fusion (``mean-logit``): the happy score is sigmoid of the weighted mean
   of the two scores' logits.

Before all of these, a bundle may level the crop (``level``, format 4): the gate's
box is upright whatever the head does, and the classifier learnt from mostly
upright faces, so a head rolled 45 degrees opened the door for about 30% of
non-smiling faces a frame (reports/tilt/). The mesh's eye line gives the roll;
the crop is cut again from the frame turned about the crop's centre, by the roll
beyond :attr:`GeometrySpec.level_beyond` degrees (faces within it, like the
training faces, are scored as before). Run on an upright crop the mesh sees only
part of a large roll (16 degrees of 30, 10 of 45), so the roll is measured again
on the turned crop and added up, for at most ``level_rounds`` rounds; a bundle
whose level is ``detector-then-eye-line`` starts instead from the face detector's
own eye points where they say more than ``level_detector_beyond`` degrees (the
detector sees the whole rolled face).

Training the head is desktop work (``happyhouse.train.geometry``); this
module only runs it, with numpy and the TFLite runtime (no TensorFlow).
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).resolve().parent / "models" / "facemesh"
MESH_FILE = "face_landmark.tflite"
#: MediaPipe 0.10.14's face_landmark.tflite, unchanged (models/facemesh/README.md)
MESH_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
MESH_SOURCE = "mediapipe 0.10.14 wheel: mediapipe/modules/face_landmark/face_landmark.tflite"
MESH_INPUT = 192
MESH_POINTS = 468
MESH_PAD = 0.25
#: the outer eye corners in MediaPipe's mesh numbering (subject's right, left)
EYE_OUTER = (33, 263)
ALIGNMENTS = ("eye-corners",)
FEATURES = ("aligned-xy",)
FUSIONS = ("mean-logit",)
#: how the crop is levelled: ``eye-line``, by the mesh's outer eye corners (:func:`roll_degrees`),
#: first measured on the gate's upright crop; ``detector-then-eye-line``, first by the face
#: detector's own eye points where it finds them (BlazeFace: it sees the whole rolled face,
#: where the mesh on an upright crop sees only part of the roll), then by the mesh's
LEVELS = ("eye-line", "detector-then-eye-line")
#: the levelling the tilt studies adopted (reports/tilt/, ``I10`` then ``H25``): turn the roll
#: beyond 10 degrees, measured in up to 2 more rounds while the last was over 5 degrees,
#: starting from the detector's eye line where it is past 25 degrees
LEVEL_BEYOND, LEVEL_ROUNDS, LEVEL_SETTLED = 10.0, 2, 5.0
LEVEL_BY, LEVEL_DETECTOR_BEYOND = LEVELS[1], 25.0
HEAD_FILE = "geometry_head.npz"
#: logit clip: a saturated score must not outvote the other stage without limit
LOGIT_CLIP = 8.0


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def logit(p: Union[float, np.ndarray]) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1.0 - 1e-6)
    return np.clip(np.log(q / (1.0 - q)), -LOGIT_CLIP, LOGIT_CLIP)


def sigmoid(z: Union[float, np.ndarray]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def fusion_weights_valid(weights: Sequence[float]) -> bool:
    """Two finite, non-negative weights, not both 0 (written as tests that NaN fails)."""
    return (len(weights) == 2 and all(np.isfinite(w) and w >= 0 for w in weights)
            and sum(weights) > 0)


def fuse(appearance: Union[float, np.ndarray], geometry: Union[float, np.ndarray],
         weights: Sequence[float] = (0.5, 0.5)) -> np.ndarray:
    """``mean-logit`` fusion of the classifier's and the geometry head's probabilities."""
    wa, wg = float(weights[0]), float(weights[1])
    return sigmoid((wa * logit(appearance) + wg * logit(geometry)) / (wa + wg))


def mesh_input(crop_rgb: np.ndarray, pad: float = MESH_PAD) -> np.ndarray:
    """A face crop (uint8 RGB, square) -> the mesh's 1x192x192x3 float32 input in [0, 1]."""
    import cv2

    side = crop_rgb.shape[0]
    border = int(round(side * pad))
    padded = cv2.copyMakeBorder(np.ascontiguousarray(crop_rgb), border, border, border, border,
                                cv2.BORDER_REPLICATE)
    resized = cv2.resize(padded, (MESH_INPUT, MESH_INPUT), interpolation=cv2.INTER_LINEAR)
    return (resized.astype(np.float32) / np.float32(255.0))[None]


class DegenerateMesh(ModelError):
    """The mesh put both outer eye corners on one point (or not on the page): this face has
    no shape to measure."""


def align(points: np.ndarray) -> np.ndarray:
    """(468, 2+) mesh points -> (468, 2): outer eye corners level, centred, unit distance apart."""
    xy = np.asarray(points, np.float64)[..., :2]
    right, left = xy[EYE_OUTER[0]], xy[EYE_OUTER[1]]
    span = left - right
    distance = float(np.hypot(*span))
    if not np.isfinite(distance) or distance < 1e-6:
        raise DegenerateMesh("face mesh put both eye corners on one point: no geometry to score")
    cos, sin = span / distance
    rotate = np.array([[cos, sin], [-sin, cos]])  # rotation by minus the eye-line angle
    return ((xy - (right + left) / 2.0) @ rotate.T) / distance


def roll_degrees(points: np.ndarray) -> float:
    """The eye line's angle in the crop (degrees; y points down): 0 for an upright face, and
    what :func:`happyhouse.daemon.preprocess.prepare_frame`'s ``turn`` levels; 0 when the mesh
    gave no eye line (the scoring then refuses the face as :class:`DegenerateMesh`)."""
    (rx, ry), (lx, ly) = (np.asarray(points, np.float64)[i, :2] for i in EYE_OUTER)
    angle = float(np.degrees(np.arctan2(ly - ry, lx - rx)))
    return angle if np.isfinite(angle) else 0.0


def beyond(roll: float, band: float) -> float:
    """The part of ``roll`` past ``band`` degrees either way (0 within it); ``roll`` is taken
    as the same angle within (-180, 180] first (365 is 5)."""
    roll = -((-float(roll) + 180.0) % 360.0 - 180.0)
    return float(np.sign(roll) * (abs(roll) - band)) if abs(roll) > band else 0.0


def features(points: np.ndarray) -> np.ndarray:
    """The ``aligned-xy`` feature vector (936,) of one face's mesh points."""
    return align(points).reshape(-1)


class FaceMesh:
    """MediaPipe's face landmark network: ``points(crop) -> (468, 3)`` in mesh-input pixels."""

    def __init__(self, path: Union[str, Path], sha256: str = MESH_SHA256, threads: int = 1,
                 runtimes: Optional[Sequence[str]] = None,
                 shown: Optional[Path] = None) -> None:
        from .runtime import load_interpreter

        path = Path(path)
        shown = Path(shown) if shown is not None else path  # named in messages (read: path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"face landmark model {shown} cannot be read "
                             f"({exc.strerror or exc})") from None
        digest = _sha256_bytes(data)
        if digest != sha256:
            raise ModelError(f"face landmark model {shown}: sha256 {digest[:12]}... is not the "
                             f"{sha256[:12]}... the bundle was built with")
        self.path, self.sha256 = shown, digest
        # loaded from the file (mapped, shared with the page cache) rather than from these
        # bytes: 1.2 MB less of the daemon's private memory (the cost goal counts RSS anon)
        del data
        self.runtime, self._interp = load_interpreter(path, threads, runtimes, label=str(shown))
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
        sizes = {int(np.prod(o["shape"])): o["index"] for o in outputs}
        if (shape != (1, MESH_INPUT, MESH_INPUT, 3) or inputs[0]["dtype"] != np.float32
                or MESH_POINTS * 3 not in sizes):
            raise ModelError(f"{shown} is not MediaPipe's face landmark model (input {shape}, "
                             f"outputs {sorted(sizes)})")
        self._input, self._points = inputs[0]["index"], sizes[MESH_POINTS * 3]

    def points(self, crop_rgb: np.ndarray, pad: float = MESH_PAD) -> np.ndarray:
        self._interp.set_tensor(self._input, mesh_input(crop_rgb, pad))
        self._interp.invoke()
        return self._interp.get_tensor(self._points).reshape(MESH_POINTS, 3).copy()


@dataclass(frozen=True)
class GeometryHead:
    """Logistic regression over the aligned features: P(happy) = sigmoid(w . x + b)."""

    weights: np.ndarray  # (936,) float64
    bias: float

    @classmethod
    def load(cls, path, shown: Optional[Path] = None) -> "GeometryHead":
        """The head in ``path`` (a file, or its bytes already hash-checked as a file object);
        ``shown`` names it in the messages."""
        shown = shown or path
        try:
            with np.load(path) as data:
                weights = np.asarray(data["weights"], np.float64).reshape(-1)
                bias = float(np.asarray(data["bias"]).reshape(()))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"geometry head {shown} is unreadable: {exc}") from None
        if weights.shape != (MESH_POINTS * 2,) or not np.all(np.isfinite(weights)) \
                or not np.isfinite(bias):
            raise ModelError(f"geometry head {shown} must hold {MESH_POINTS * 2} finite weights "
                             f"and a bias, got shape {weights.shape}")
        return cls(weights, bias)

    def save(self, path: Union[str, Path]) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, weights=self.weights.astype(np.float64),
                     bias=np.float64(self.bias))

    def score(self, feature_vector: np.ndarray) -> float:
        return float(sigmoid(float(feature_vector @ self.weights) + self.bias))


@dataclass(frozen=True)
class GeometrySpec:
    """The ``geometry`` section of ``model.json``: what the stage is and which files it needs."""

    mesh_file: str
    mesh_sha256: str
    head_file: str
    head_sha256: str
    pad: float = MESH_PAD
    alignment: str = "eye-corners"
    features: str = "aligned-xy"
    fusion: str = "mean-logit"
    weights: Tuple[float, float] = (0.5, 0.5)
    mesh_source: str = MESH_SOURCE
    #: levelling (format 4): None serves the crop as the gate boxes it (bundles before it)
    level_beyond: Optional[float] = None
    level_by: str = LEVELS[0]
    #: ``detector-then-eye-line``: the detector's roll starts only past this many degrees
    level_detector_beyond: float = 0.0
    level_rounds: int = LEVEL_ROUNDS
    level_settled: float = LEVEL_SETTLED

    @classmethod
    def from_dict(cls, data: Mapping, where: str) -> "GeometrySpec":
        """Validate every field; a step this build does not know is refused, never guessed."""
        if not isinstance(data, Mapping):
            raise ModelError(f"{where}: geometry must be an object")
        try:
            mesh, head, fusion = data["landmarks"], data["head"], data["fusion"]
            spec = cls(mesh_file=str(mesh["file"]), mesh_sha256=str(mesh["sha256"]),
                       head_file=str(head["file"]), head_sha256=str(head["sha256"]),
                       pad=float(mesh.get("pad", MESH_PAD)),
                       alignment=str(data["alignment"]), features=str(data["features"]),
                       fusion=str(fusion["rule"]),
                       weights=tuple(float(w) for w in fusion.get("weights", (0.5, 0.5))),
                       mesh_source=str(mesh.get("source", "")),
                       **_level_fields(data.get("level"), where))
        except KeyError as exc:
            raise ModelError(f"{where}: geometry section has no {exc.args[0]!r}: rebuild the "
                             f"bundle with happyhouse-convert") from None
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{where}: geometry section is malformed (landmarks and head must "
                             f"be objects with file and sha256, fusion one with rule and "
                             f"weights; {exc}): rebuild the bundle with happyhouse-convert") from None
        for name, value, known in (("alignment", spec.alignment, ALIGNMENTS),
                                   ("features", spec.features, FEATURES),
                                   ("fusion", spec.fusion, FUSIONS)):
            if value not in known:
                raise ModelError(f"{where}: geometry {name} {value!r} is not one this build "
                                 f"serves ({', '.join(known)}): the bundle needs a newer happyhouse")
        if not fusion_weights_valid(spec.weights):
            raise ModelError(f"{where}: fusion weights must be two finite non-negative numbers, "
                             f"not both 0, got {spec.weights}")
        if not 0.0 <= spec.pad <= 1.0:
            raise ModelError(f"{where}: landmark pad must be within 0..1, got {spec.pad}")
        for name in (spec.mesh_file, spec.head_file):
            if Path(name).name != name or name in ("", ".", ".."):
                raise ModelError(f"{where}: geometry file {name!r} must be a plain file name")
        return spec

    def to_dict(self) -> dict:
        section = {"landmarks": {"file": self.mesh_file, "sha256": self.mesh_sha256,
                              "source": self.mesh_source, "licence": "Apache-2.0",
                              "input": [1, MESH_INPUT, MESH_INPUT, 3], "points": MESH_POINTS,
                              "pad": self.pad, "crop": "the contract's face crop before "
                                                       "normalize, edge-padded"},
                "alignment": self.alignment, "features": self.features,
                "head": {"file": self.head_file, "sha256": self.head_sha256,
                         "kind": "logistic regression"},
                "fusion": {"rule": self.fusion, "weights": list(self.weights),
                           "order": ["classifier", "geometry"]}}
        if self.level_beyond is not None:
            section["level"] = {"by": self.level_by, "beyond_degrees": self.level_beyond,
                                **({"detector_beyond_degrees": self.level_detector_beyond}
                                   if self.level_by == "detector-then-eye-line" else {}),
                                "rounds": self.level_rounds,
                                "settled_degrees": self.level_settled,
                                "turn": "the crop cut again from the frame turned about its "
                                        "centre by the roll past beyond_degrees"}
        return section


def _level_fields(level, where: str) -> dict:
    """GeometrySpec's level fields from ``model.json``'s ``geometry.level`` (absent: none)."""
    if level is None:
        return {}
    if not isinstance(level, Mapping):
        raise ModelError(f"{where}: geometry level must be an object, got {level!r}")
    if level.get("by") not in LEVELS:
        raise ModelError(f"{where}: geometry level by {level.get('by')!r} is not one this build "
                         f"serves ({', '.join(LEVELS)}): the bundle needs a newer happyhouse")
    fields = {"level_beyond": level.get("beyond_degrees"), "level_rounds": level.get("rounds"),
              "level_settled": level.get("settled_degrees"),
              "level_detector_beyond": level.get("detector_beyond_degrees", 0.0)}
    for name, value, low, high in (("beyond_degrees", fields["level_beyond"], 0, 45),
                                   ("detector_beyond_degrees", fields["level_detector_beyond"], 0, 90),
                                   ("rounds", fields["level_rounds"], 0, 4),
                                   ("settled_degrees", fields["level_settled"], 0, 45)):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not np.isfinite(value) or not low <= value <= high
                or (name == "rounds" and not isinstance(value, int))):
            raise ModelError(f"{where}: geometry level {name} must be a number within "
                             f"{low}..{high}{' (whole)' if name == 'rounds' else ''}, got {value!r}")
    return {"level_beyond": float(fields["level_beyond"]), "level_by": level["by"],
            "level_detector_beyond": float(fields["level_detector_beyond"]),
            "level_rounds": fields["level_rounds"],
            "level_settled": float(fields["level_settled"])}


def find_asset(name: str, bundle_dir: Path) -> Optional[Path]:
    """A bundle's file: in the bundle folder, else (shared assets) in this package's models."""
    for folder in (bundle_dir, ASSET_DIR):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


class Geometry:
    """The whole stage: mesh, alignment, features, head. ``score(crop) -> P(happy)``."""

    def __init__(self, spec: GeometrySpec, mesh: FaceMesh, head: GeometryHead) -> None:
        self.spec, self.mesh, self.head = spec, mesh, head

    @classmethod
    def load(cls, spec: GeometrySpec, bundle_dir: Path, threads: int = 1,
             shown: Optional[Path] = None) -> "Geometry":
        """The stage from ``bundle_dir`` (read there; ``shown``, the bundle's own path, is
        named in the messages)."""
        shown = shown or bundle_dir
        mesh_path = find_asset(spec.mesh_file, bundle_dir)
        if mesh_path is None:
            raise ModelError(f"{shown}: the bundle needs {spec.mesh_file} (sha256 "
                             f"{spec.mesh_sha256[:12]}...), found neither in the bundle nor in "
                             f"{ASSET_DIR}: copy it into the bundle or reinstall happyhouse")
        head_path = bundle_dir / spec.head_file
        if not head_path.is_file():
            raise ModelError(f"{shown}: the bundle needs {spec.head_file}, which is missing")
        head_bytes = head_path.read_bytes()
        digest = _sha256_bytes(head_bytes)
        if digest != spec.head_sha256:
            raise ModelError(f"{shown / spec.head_file}: sha256 {digest[:12]}... does not match "
                             f"model.json ({spec.head_sha256[:12]}...): the file was changed or "
                             f"corrupted")
        in_bundle = mesh_path.parent == bundle_dir
        return cls(spec, FaceMesh(mesh_path, spec.mesh_sha256, threads,
                                  shown=shown / spec.mesh_file if in_bundle else mesh_path),
                   GeometryHead.load(io.BytesIO(head_bytes), shown / spec.head_file))

    @property
    def description(self) -> str:
        """One line for logs and ``--check``: which mesh, and how the two scores are fused."""
        w_cls, w_geo = self.spec.weights
        level = ("" if self.spec.level_beyond is None else
                 f", crop levelled by the eye line beyond {self.spec.level_beyond:g} degrees"
                 + ("" if self.spec.level_by == "eye-line" else
                    f" (from the detector's eye points past "
                    f"{self.spec.level_detector_beyond:g} degrees)"))
        return (f"face mesh {self.spec.mesh_file} (sha256 {self.mesh.sha256[:12]}) + "
                f"{self.spec.features} head, fused {self.spec.fusion} "
                f"{w_cls:g}:{w_geo:g} with the classifier{level}")

    @property
    def levels(self) -> bool:
        return self.spec.level_beyond is not None

    def level(self, frame_bgr: np.ndarray, box, contract,
              first: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray, float]:
        """(crop, its mesh points, turn in degrees): the contract's crop of ``box``, levelled
        as the bundle says (turn 0, the crop as boxed, for a bundle without levelling or a
        face within the band). ``contract``: the geometric :class:`Preprocess`; ``first``:
        the detector's roll of this face (:attr:`FaceGate.eye_roll`), where it has one and
        the bundle starts from it (``detector-then-eye-line``, past ``level_detector_beyond``
        degrees; else the mesh's roll on the upright crop starts)."""
        from .preprocess import prepare_frame

        spec = self.spec
        seen = {}

        def cut(turn: float):
            if turn not in seen:
                crop = prepare_frame(frame_bgr, box, contract, turn=turn)
                seen[turn] = (crop, self.mesh.points(crop, spec.pad))
            return seen[turn]

        if spec.level_beyond is None:
            return cut(0.0) + (0.0,)
        if (spec.level_by == "detector-then-eye-line" and first is not None and np.isfinite(first)
                and abs(first) > spec.level_detector_beyond):
            total = last = float(first)
        else:
            total = last = roll_degrees(cut(0.0)[1])
        for _ in range(spec.level_rounds):
            if abs(last) <= spec.level_settled:
                break
            last = roll_degrees(cut(total)[1])
            total += last
        turn = beyond(total, spec.level_beyond)
        return cut(turn) + (turn,)

    def score(self, crop_rgb: np.ndarray) -> float:
        """P(happy) from the face's shape alone (the crop before light normalisation);
        :class:`DegenerateMesh` when the mesh found no shape to measure."""
        return self.score_points(self.mesh.points(crop_rgb, self.spec.pad))

    def score_points(self, points: np.ndarray) -> float:
        """The same from the crop's mesh points (:meth:`level` gives them)."""
        return self.head.score(features(points))

    def fuse(self, appearance: float, geometry: float) -> float:
        return float(fuse(appearance, geometry, self.spec.weights))

"""Model bundles: ``model.tflite`` + ``model.json`` (+ ``golden.npz``).

The bundle carries everything the door needs and nothing it must guess: the
preprocessing contract, quantization, labels, threshold, provenance, its
validation figures and the sha256 of every file (``bundleschema``: the schema,
the manifest and what a format-1 bundle without one is still checked for). Golden vectors (prepared inputs and the raw int8
outputs the converter saw) let the device prove, before it arms, that its
runtime and preprocessing reproduce the desktop's numbers.

Writing lives here too (used by ``happyhouse.convert``) so the schema is
defined once.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Tuple, Union

import numpy as np

from .bundleschema import (FORMAT, FORMAT_VERSION, GOLDEN_FILE, MANIFEST_KEY, META_FILE,  # noqa: F401
                           MODEL_FILE, SEAL_KEY, SERVED_VERSIONS, manifest, seal, validate_meta)
from .endsignals import deferred
from .errors import DataError, ModelError, SelfTestError
from .evidence import require_threshold
from .geometry import GeometrySpec
from .preprocess import Preprocess
from .runtime import PROBABILITY

#: raw output steps a different runtime/kernel may round differently
GOLDEN_TOLERANCE = 2
#: geometry head probability: float32 kernels differ in the last bits between
#: CPUs, which moves mesh points by far less than this
GEOMETRY_TOLERANCE = 0.02


def default_bundle_path() -> Path:
    """The bundle shipped inside the package (the general face model)."""
    return Path(__file__).resolve().parent / "models" / "default"


def sha256_file(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    path: Path
    meta: Mapping[str, Any]
    preprocess: Preprocess
    threshold: float
    sha256: str
    #: the face-geometry stage and its fusion (format version 2), if the bundle has one
    geometry: Optional[GeometrySpec] = None
    #: file name -> sha256 of every file the bundle was written with ({} for a bundle
    #: written before the manifest, like the shipped format-1 general model)
    manifest: Mapping[str, str] = field(default_factory=dict)
    #: the folder held open while it is loaded (:class:`PinnedFolder`), if it could be
    pin: Any = field(default=None, compare=False, repr=False)
    #: sha256 of the model.json this bundle was loaded from (``model_history.fingerprint``
    #: of the folder as it was read)
    fingerprint: Optional[str] = None

    @property
    def files(self) -> Path:
        """Where the bundle's files are read: through the folder held open at load, so that
        all of them come from this one folder even when a rollback or install renames
        another into its place meanwhile (the network of one bundle was served with the
        model.json, threshold and golden vectors of another)."""
        return self.pin.root if self.pin is not None else self.path

    @property
    def model_path(self) -> Path:
        """The model file by the bundle's own path (what a person or another tool opens;
        this bundle's own loads read :attr:`files`, valid only while it is alive)."""
        return self.path / MODEL_FILE

    @property
    def score_kind(self) -> str:
        """What the model's output holds (``probability`` before format 3; see runtime)."""
        return self.meta["output"].get("score", PROBABILITY)

    @property
    def views(self) -> int:
        """Output values per image: golden outputs hold this many per input."""
        return int(np.prod(self.meta["output"]["shape"]))

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.meta.get("labels", ("not_happy", "happy")))

    def classifier(self, threads: int = 1, runtimes=None):
        """Load the interpreter and check it against the metadata."""
        from .runtime import Classifier

        # from the bytes hashed here, not the file: a file mapped by the runtime and then
        # truncated in place (a cp over it) killed the service with SIGBUS at the next
        # frame, with no "latch locked" line; and what is hashed is what is served
        try:
            data = (self.files / MODEL_FILE).read_bytes()
        except OSError as exc:
            raise ModelError(f"{self.model_path} cannot be read ({exc.strerror or exc})") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            raise ModelError(f"{self.model_path}: sha256 {digest[:12]}… is not the {self.sha256[:12]}… "
                             f"checked when the bundle was opened: it changed meanwhile (copied "
                             f"over in place?); reinstall it with install.sh --bundle")
        clf = Classifier(data, threads=threads, runtimes=runtimes, score=self.score_kind,
                         label=str(self.model_path))
        want = tuple(self.meta["input"]["shape"])
        if clf.input.shape != want or clf.input.dtype != self.meta["input"]["dtype"]:
            raise ModelError(f"{self.model_path}: model input {clf.input.shape} {clf.input.dtype} "
                             f"disagrees with {META_FILE} ({want} {self.meta['input']['dtype']})")
        for name, tensor in (("input", clf.input), ("output", clf.output)):
            # the wrapper quantizes with the interpreter's own figures; a model.json that
            # records others (an unsealed bundle edited by hand, or the wrong model.json
            # copied beside the model) describes another model
            said = self.meta[name]
            for key, actual in (("scale", tensor.scale), ("zero_point", tensor.zero_point)):
                if key in said and not math.isclose(said[key], actual, rel_tol=1e-6,
                                                    abs_tol=1e-12):
                    raise ModelError(f"{self.model_path}: {name} {key} {actual!r} disagrees "
                                     f"with {META_FILE} ({said[key]!r}): that file describes "
                                     f"another model; reinstall the bundle")
        if clf.views != self.views:
            raise ModelError(f"{self.model_path}: model output {clf.output.shape} disagrees with "
                             f"{META_FILE} ({self.meta['output']['shape']})")
        size = self.preprocess.size
        if clf.input_size != (size, size):
            raise ModelError(f"{self.path}: preprocess size {size} disagrees with the model "
                             f"input {clf.input_size}")
        return clf

    def geometry_stage(self, threads: int = 1):
        """The loaded, hash-checked geometry stage, or None for a bundle without one."""
        if self.geometry is None:
            return None
        from .geometry import Geometry

        return Geometry.load(self.geometry, self.files, threads, shown=self.path)

    def golden(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """(inputs, raw outputs) of the golden vectors, checked against the model's input."""
        arrays = self._golden_arrays()
        if arrays is None:
            return None
        path, inputs, outputs = self.path / GOLDEN_FILE, arrays["inputs"], arrays["outputs"]
        want = tuple(self.meta["input"]["shape"][1:])
        if inputs.dtype != np.uint8 or inputs.ndim != 4 or tuple(inputs.shape[1:]) != want:
            raise ModelError(f"{path}: golden inputs are {inputs.dtype} {tuple(inputs.shape)}, "
                             f"expected uint8 N x {' x '.join(map(str, want))}")
        if len(inputs) == 0:
            raise ModelError(f"{path} holds no golden vectors: nothing to self-test with")
        count = (self.meta.get("golden") or {}).get("count")
        if count is not None and count != len(inputs):
            raise ModelError(f"{path} holds {len(inputs)} golden vectors, {META_FILE} says {count}")
        if outputs.size != len(inputs) * self.views or outputs.dtype.kind not in "iuf":
            raise ModelError(f"{path}: {len(inputs)} golden inputs but {outputs.size} "
                             f"{outputs.dtype} outputs ({self.views} per input expected)")
        return inputs, outputs

    def _golden_arrays(self) -> Optional[dict]:
        path = self.path / GOLDEN_FILE
        if not (self.files / GOLDEN_FILE).exists():
            return None
        try:
            with np.load(self.files / GOLDEN_FILE, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"{path} is unreadable: {first}") from None
        for key in ("inputs", "outputs"):
            if key not in arrays:
                raise ModelError(f"{path} lacks the array {key!r}")
        return arrays

    def self_test_geometry(self, geometry) -> int:
        """Reproduce the geometry stage's golden scores (raw crops -> head score)."""
        arrays = self._golden_arrays() or {}
        crops, want = arrays.get("geometry_inputs"), arrays.get("geometry_scores")
        if crops is None or want is None or len(crops) == 0 or len(crops) != len(want):
            raise SelfTestError(f"{self.path}: {GOLDEN_FILE} has no geometry vectors: cannot "
                                f"self-test the geometry stage, refusing to arm")
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3 \
                or crops.shape[1] != crops.shape[2] or crops.shape[1] < 16 \
                or np.asarray(want).dtype.kind != "f":
            raise ModelError(f"{self.path / GOLDEN_FILE}: geometry vectors are "
                             f"{crops.dtype} {tuple(crops.shape)} crops with "
                             f"{np.asarray(want).dtype} scores, expected uint8 N x S x S x 3 "
                             f"face crops and float scores")
        got = np.array([geometry.score(crop) for crop in crops])
        worst = float(np.max(np.abs(got - np.asarray(want, np.float64)), initial=0.0))
        if not worst <= GEOMETRY_TOLERANCE:
            raise SelfTestError(f"{self.path}: the face mesh on this runtime does not reproduce "
                                f"the golden geometry scores (largest difference {worst:.4f}, "
                                f"allowed {GEOMETRY_TOLERANCE}); refusing to arm")
        return len(want)

    def self_test(self, clf) -> int:
        """Reproduce the golden vectors; raise SelfTestError if the runtime disagrees.

        Returns how many golden images were checked. A bundle without golden vectors
        cannot be proven and is refused.
        """
        golden = self.golden()
        if golden is None:
            raise SelfTestError(f"{self.path} has no {GOLDEN_FILE}: cannot self-test, refusing to arm")
        inputs, expected = golden
        got = clf.raw_outputs(inputs).reshape(-1)
        want = np.asarray(expected).reshape(-1)
        if len(got) != len(want):
            raise SelfTestError(f"{self.path}: {GOLDEN_FILE} holds {len(inputs)} inputs but "
                                f"{len(want)} outputs")
        if clf.output.quantized:
            worst = float(np.max(np.abs(got.astype(np.int64) - want.astype(np.int64)), initial=0))
            allowed = GOLDEN_TOLERANCE
        else:
            worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0))
            allowed = 1e-3
        if worst > allowed:
            raise SelfTestError(f"{self.path}: runtime {clf.runtime} does not reproduce the golden "
                                f"outputs (largest difference {worst:g}, allowed {allowed:g}); "
                                f"refusing to arm")
        return len(inputs)  # golden images (a two-view model has two outputs for each)


def _read_meta(path: Path, shown: Optional[Path] = None) -> Tuple[dict, str]:
    """(model.json's content, the sha256 of its bytes: the bundle's fingerprint)."""
    meta_path = (shown or path) / META_FILE
    try:
        raw = (path / META_FILE).read_bytes()
        meta = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{meta_path} is missing: not a model bundle "
                         f"(expected {MODEL_FILE} and {META_FILE})") from None
    except OSError as exc:  # its strerror only: the file was read through the held folder
        raise ModelError(f"{meta_path} cannot be read ({exc.strerror or exc}): give the "
                         f"service's user read access, or reinstall the bundle") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, deep nesting
        raise ModelError(f"{meta_path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ModelError(f"{meta_path} is not valid JSON: nested too deeply") from None
    if isinstance(meta, dict) and SEAL_KEY in meta and seal(meta, meta_path) != meta[SEAL_KEY]:
        raise ModelError(f"{meta_path} was changed after the bundle was written (its "
                         f"{SEAL_KEY} does not match): reconvert, or restore the file")
    validate_meta(meta, meta_path)
    return meta, hashlib.sha256(raw).hexdigest()


def _check_files(root: Path, meta: dict, shown: Optional[Path] = None) -> Tuple[str, dict]:
    """(the model's sha256, the manifest): every listed file must exist and match (``root``
    is read, ``shown`` named in the messages)."""
    shown = shown or root
    files = manifest(meta, shown / META_FILE)
    if not (root / MODEL_FILE).is_file():
        raise ModelError(f"{shown / MODEL_FILE} is missing")
    digest = _readable_digest(root / MODEL_FILE, shown / MODEL_FILE)
    if digest != meta["sha256"]:
        raise ModelError(f"{shown / MODEL_FILE}: sha256 {digest[:12]}… does not match "
                         f"{META_FILE} ({meta['sha256'][:12]}…): the model file was changed or "
                         f"corrupted")
    for name, want in files.items():
        if name == MODEL_FILE:
            continue
        if not (root / name).is_file():
            raise ModelError(f"{shown / name} is missing (listed in {META_FILE} {MANIFEST_KEY})")
        got = _readable_digest(root / name, shown / name)
        if got != want:
            raise ModelError(f"{shown / name}: sha256 {got[:12]}… does not match {META_FILE} "
                             f"({want[:12]}…): the file was changed or corrupted")
    return digest, files


def _readable_digest(path: Path, shown: Optional[Path] = None) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise ModelError(f"{shown or path} cannot be read ({exc.strerror or exc}): give the "
                         f"service's user read access (chmod a+r), or reinstall the bundle") from None


def _no_pin() -> None:
    """An unpickled bundle reads its files by name (a pin does not cross processes)."""
    return None


class PinnedFolder:
    """A bundle folder held open (a directory descriptor) while it is loaded: a path through
    it (``/proc/self/fd/N``) reaches this very folder even after another is renamed into its
    place, so every file a load reads comes from one bundle."""

    def __init__(self, folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.fd = fd
        weakref.finalize(self, os.close, fd)
        through = Path(f"/proc/self/fd/{fd}")
        self.root = through if through.is_dir() else folder  # no /proc: by name, as before

    def __deepcopy__(self, memo) -> "PinnedFolder":
        return self  # a copy with the same descriptor but no finalizer would dangle

    def __reduce__(self):
        return (_no_pin, ())  # a descriptor means nothing in another process

    @classmethod
    def open(cls, folder: Path) -> Optional["PinnedFolder"]:
        try:
            return cls(folder)
        except OSError:  # read by name, as before (its errors are said there)
            return None


def load_bundle(path: Union[str, Path, None] = None) -> Bundle:
    """Open and verify a bundle folder (or its ``model.json``/``model.tflite``)."""
    root = default_bundle_path() if path in (None, "") else Path(path)
    if root.is_file() and root.name in (MODEL_FILE, META_FILE):
        root = root.parent
    if root.exists() and not root.is_dir():
        raise ModelError(f"model bundle {root} is a file: it must be a bundle folder (with "
                         f"{MODEL_FILE} and {META_FILE}, as happyhouse-convert writes)")
    if not root.is_dir():
        raise ModelError(f"model bundle {root} does not exist (expected a folder with "
                         f"{MODEL_FILE} and {META_FILE})")
    pin = PinnedFolder.open(root)
    read = pin.root if pin is not None else root
    meta, meta_sha256 = _read_meta(read, root)
    digest, files = _check_files(read, meta, root)
    threshold = require_threshold(meta, float(meta["threshold"]), str(root / META_FILE))
    preprocess = Preprocess.from_dict(meta["preprocess"])
    geometry = None
    if "geometry" in meta:
        if meta["format_version"] < 2:
            raise ModelError(f"{root / META_FILE}: a geometry stage needs format_version 2")
        geometry = GeometrySpec.from_dict(meta["geometry"], str(root / META_FILE))
        if geometry.level_beyond is not None and preprocess.crop != "face":
            # a whole-frame crop cannot be turned: it loaded and served unturned crops
            raise ModelError(f"{root / META_FILE}: a levelled crop (geometry.level) needs "
                             f"preprocess crop 'face', not {preprocess.crop!r}")
        if geometry.level_beyond is not None and meta["format_version"] < 4:
            # a version-3 daemon would serve it unlevelled: the bundle must say 4
            raise ModelError(f"{root / META_FILE}: a levelled crop (geometry.level) needs "
                             f"format_version 4")
    if preprocess.normalize != "none" and meta["format_version"] < 2:
        raise ModelError(f"{root / META_FILE}: normalize {preprocess.normalize!r} needs "
                         f"format_version 2")
    return Bundle(root, meta, preprocess, threshold, digest, geometry, files, pin, meta_sha256)


def format_version(meta: Mapping[str, Any]) -> int:
    """The oldest format that can carry ``meta``'s steps (older daemons serve version 1)."""
    if "level" in (meta.get("geometry") or {}):
        return 4
    if (meta.get("output") or {}).get("score", PROBABILITY) != PROBABILITY:
        return 3
    pre = meta.get("preprocess") or {}
    needs_2 = "geometry" in meta or pre.get("normalize", "none") != "none"
    return 2 if needs_2 else 1


def _swap_in(tmp: Path, out: Path) -> None:
    """The written folder ``tmp`` becomes ``out``, replacing what was there."""
    backup = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(backup, ignore_errors=True)
    with deferred():  # a signal between the two renames left no bundle at ``out``
        if out.exists():
            try:
                os.replace(out, backup)
            except OSError as exc:
                raise DataError(f"the bundle at {out} cannot be moved aside to {backup} "
                                f"({exc.strerror or exc}): remove {backup}; nothing was "
                                f"replaced") from None
        try:
            os.replace(tmp, out)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # another program wrote ``out`` between the renames (two conversions at once)
            raise DataError(f"{out} was written by another program while this one wrote it: "
                            f"this bundle is not kept (write one bundle at a time)") from None
    shutil.rmtree(backup, ignore_errors=True)


def write_bundle(out_dir: Union[str, Path], tflite: bytes, meta: Mapping[str, Any],
                 golden_inputs: np.ndarray, golden_outputs: np.ndarray,
                 extra_files: Optional[Mapping[str, Union[str, bytes]]] = None,
                 golden_extra: Optional[Mapping[str, np.ndarray]] = None,
                 prove: Optional[Callable[[Bundle], None]] = None) -> Bundle:
    """Write a bundle atomically: all files appear together or not at all.

    ``meta`` supplies everything but the format fields and sha256, which are
    filled in here. The result is re-read and verified, and ``prove`` (the
    converter's self-tests) runs on it, before it replaces ``out_dir``: a bundle
    that fails leaves the earlier one where it was.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    full = {"format": FORMAT, "format_version": format_version(meta), "model_file": MODEL_FILE,
            **{k: v for k, v in dict(meta).items() if k not in (MANIFEST_KEY, SEAL_KEY)},
            "sha256": hashlib.sha256(tflite).hexdigest(),
            "golden": {"file": GOLDEN_FILE, "count": int(len(golden_inputs)),
                       "tolerance": GOLDEN_TOLERANCE}}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / MODEL_FILE).write_bytes(tflite)
        np.savez_compressed(tmp / GOLDEN_FILE, inputs=np.asarray(golden_inputs, np.uint8),
                            outputs=np.asarray(golden_outputs), **dict(golden_extra or {}))
        for name, content in (extra_files or {}).items():
            target = tmp / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        # every file is listed with its sha256 and model.json sealed last, so whatever a
        # bundle carries (the geometry head, a landmark model) is covered by the loader
        full[MANIFEST_KEY] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        full[SEAL_KEY] = seal(full)
        (tmp / META_FILE).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n",
                                     encoding="utf-8")
        try:
            written = load_bundle(tmp)
            if prove is not None:
                prove(written)
        except ModelError as exc:  # named as the folder asked for, not the private one
            raise type(exc)(str(exc).replace(str(tmp), str(out))) from None
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_bundle(out)

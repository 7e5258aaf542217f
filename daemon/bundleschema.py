"""The ``model.json`` schema: every field's type and range, and the bundle's file manifest.

``model.json`` is input like any other: a hand edit, a truncated copy or a tool of
another version must end in one :class:`ModelError` line naming the field, never in
a ``TypeError`` deep in the runtime (issue 16 item 6). :func:`validate_meta` checks
every field the daemon reads before anything uses it.

Integrity (issue 16 item 4): a bundle written by this version lists every file
with its sha256 in ``files`` and seals ``model.json`` itself with ``meta_sha256``
(the sha256 of its canonical JSON without that field), so a changed threshold,
golden vector or model card is refused, and a new asset (e.g. a face-landmark
model) is covered by adding it to the bundle folder when it is written. Format-1
bundles written before the manifest (the shipped general model) have only the
``.tflite`` sha256; for them the loader checks what can be checked (the model hash,
every field, the threshold against its recorded figures and the floor; the golden
vectors are proven by the self-test).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import ModelError
from .evidence import validate_metrics
from .preprocess import Preprocess
from .runtime import MAX_VIEWS, PROBABILITY, SCORE_KINDS

FORMAT = "happyhouse-bundle"
#: what this build writes for a bundle whose model outputs logits (version 3,
#: ``output.score`` = ``view_logits``); a bundle with the steps of version 2 (light
#: normalisation, the geometry stage) and a probability output is still written as
#: 2, one with neither as 1, so an older daemon keeps serving what it can. Version 4:
#: the geometry stage levels the crop (``geometry.level``); a version-3 daemon would
#: serve it unlevelled, where a rolled head opens for non-smiles (reports/tilt/)
FORMAT_VERSION = 4
#: every version this build can serve; an older daemon refuses a newer bundle by
#: its format_version instead of serving it without its new steps (a version-2
#: daemon would read a logit as a probability)
SERVED_VERSIONS = (1, 2, 3, 4)
MODEL_FILE = "model.tflite"
META_FILE = "model.json"
GOLDEN_FILE = "golden.npz"
#: the fields that seal the bundle (not part of what ``meta_sha256`` covers)
MANIFEST_KEY, SEAL_KEY = "files", "meta_sha256"
#: files the loader itself reads: a manifest must name them
REQUIRED_FILES = (MODEL_FILE, GOLDEN_FILE)
TENSOR_DTYPES = ("int8", "uint8", "float32")
#: float slack when the served threshold is compared with the recorded ones
THRESHOLD_MATCH = 1e-6


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(where: Path, field: str, value: Any, expected: str) -> ModelError:
    return ModelError(f"{where}: {field} = {_short(value)} is invalid: expected {expected}")


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sha256(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in "0123456789abcdef" for c in value))


def seal(meta: Mapping[str, Any], where: Optional[Path] = None) -> str:
    """sha256 of ``meta``'s canonical JSON without :data:`SEAL_KEY` (``where``, the file,
    is named when a value cannot be sealed)."""
    body = {k: v for k, v in meta.items() if k != SEAL_KEY}
    try:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        found, shown = _unsealable(body), where or META_FILE
        if found:
            raise ModelError(f"{shown}: {found[0]} = {found[1]!r} is not a number JSON can "
                             f"hold (NaN, Infinity): reconvert, or restore the file") from None
        raise ModelError(f"{shown} holds a value JSON cannot seal ({exc}): reconvert, or "
                         f"restore the file") from None
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _unsealable(value: Any, field: str = "") -> Optional[Tuple[str, float]]:
    """(dotted name, value) of the first value strict JSON cannot write (NaN, Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return field or "(the file)", value
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _unsealable(item, f"{field}.{key}" if field else str(key))
        if found:
            return found
    return None


def _tensor(where: Path, meta: Mapping, name: str) -> None:
    spec = meta.get(name)
    if not isinstance(spec, dict):
        raise _bad(where, name, spec, "an object with shape and dtype")
    shape = spec.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(_is_int(v) and v > 0 for v in shape)):
        raise _bad(where, f"{name}.shape", shape, "a list of positive whole numbers")
    if spec.get("dtype") not in TENSOR_DTYPES:
        raise _bad(where, f"{name}.dtype", spec.get("dtype"), f"one of {', '.join(TENSOR_DTYPES)}")
    if "scale" in spec and not (_is_number(spec["scale"]) and spec["scale"] >= 0):
        raise _bad(where, f"{name}.scale", spec["scale"], "a number >= 0")
    if "zero_point" in spec and not _is_int(spec["zero_point"]):
        raise _bad(where, f"{name}.zero_point", spec["zero_point"], "a whole number")


def validate_meta(meta: Any, where: Path) -> None:
    """Raise one ModelError line for the first field of ``model.json`` that is wrong."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{where} is not a {FORMAT} file")
    if meta.get("format_version") not in SERVED_VERSIONS or isinstance(meta["format_version"], bool):
        raise ModelError(f"{where}: format_version {meta.get('format_version')!r} is not "
                         f"supported (this build reads "
                         f"{', '.join(str(v) for v in SERVED_VERSIONS)}): upgrade happyhouse")
    for field in ("sha256", "input", "output", "preprocess", "threshold"):
        if field not in meta:
            raise ModelError(f"{where} lacks the field {field!r}")
    if meta.get("model_file", MODEL_FILE) != MODEL_FILE:
        raise _bad(where, "model_file", meta["model_file"], repr(MODEL_FILE))
    if not _is_sha256(meta["sha256"]):
        raise _bad(where, "sha256", meta["sha256"], "64 lowercase hex digits")
    _tensor(where, meta, "input")
    if len(meta["input"]["shape"]) != 4:
        raise _bad(where, "input.shape", meta["input"]["shape"], "[1, height, width, 3]")
    _tensor(where, meta, "output")
    score = meta["output"].get("score", PROBABILITY)
    if score not in SCORE_KINDS:
        raise _bad(where, "output.score", score, f"one of {', '.join(SCORE_KINDS)}")
    if score != PROBABILITY and meta["format_version"] < 3:
        raise ModelError(f"{where}: output.score {score!r} needs format_version 3")
    views = math.prod(meta["output"]["shape"])
    if views != 1 and score == PROBABILITY or views > MAX_VIEWS:
        raise _bad(where, "output.shape", meta["output"]["shape"],
                   f"one probability, or one logit per view (at most {MAX_VIEWS})")
    if not isinstance(meta["preprocess"], dict):
        raise _bad(where, "preprocess", meta["preprocess"], "an object")
    try:
        Preprocess.from_dict(meta["preprocess"])
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}") from None
    threshold = meta["threshold"]
    if not (_is_number(threshold) and 0.0 <= threshold <= 1.0):
        raise _bad(where, "threshold", threshold, "a number within 0..1")
    labels = meta.get("labels", ["not_happy", "happy"])
    if (not isinstance(labels, list) or len(labels) != 2
            or not all(isinstance(v, str) and v for v in labels)):
        raise _bad(where, "labels", labels, "a list of 2 class names")
    if labels != ["not_happy", "happy"]:
        # the score is the happy class's, whatever the names say: names swapped by hand
        # were accepted and changed nothing the door did
        raise _bad(where, "labels", labels, '["not_happy", "happy"] (the score is the second '
                   "class's)")
    golden = meta.get("golden", {})
    if not isinstance(golden, dict):
        raise _bad(where, "golden", golden, "an object")
    if "count" in golden and not (_is_int(golden["count"]) and golden["count"] >= 1):
        raise _bad(where, "golden.count", golden["count"], "a whole number >= 1")
    if golden.get("file", GOLDEN_FILE) != GOLDEN_FILE:
        raise _bad(where, "golden.file", golden["file"], repr(GOLDEN_FILE))
    try:
        validate_metrics(meta)
    except ModelError as exc:
        raise ModelError(f"{where}: {str(exc).removeprefix(META_FILE + ' ')}") from None
    # parity is measured at the served threshold; training's figures are the classifier's
    # alone, whose threshold a geometry stage (recorded in metrics.fusion) replaces. A
    # threshold below the measured one opens for more faces than the figures show (a hand
    # edit, a mixed-up file); a higher one only makes the door stricter
    fused = "geometry" in meta or "fusion" in (meta.get("metrics") or {})
    for scope in ("parity",) if fused else ("training", "parity"):
        recorded = (meta.get("metrics") or {}).get(scope) or {}
        if recorded.get("threshold") is not None and \
                threshold < recorded["threshold"] - THRESHOLD_MATCH:
            raise ModelError(f"{where}: threshold {threshold:g} is below the threshold "
                             f"{recorded['threshold']:g} its recorded {scope} figures were "
                             f"measured at: the file was edited or mixed up")
    manifest(meta, where)


def manifest(meta: Mapping[str, Any], where: Path) -> Dict[str, str]:
    """The ``files`` manifest ({} for a format-1 bundle written before it), validated."""
    files, sealed = meta.get(MANIFEST_KEY), meta.get(SEAL_KEY)
    if files is None and sealed is None:
        return {}
    if not isinstance(files, dict) or not _is_sha256(sealed):
        raise ModelError(f"{where}: an incomplete manifest: {MANIFEST_KEY!r} must map file "
                         f"names to sha256 and {SEAL_KEY!r} must be a sha256")
    for name, digest in files.items():
        if not name or Path(name).name != name or name in (".", "..", META_FILE):
            raise _bad(where, f"{MANIFEST_KEY} name", name, "a plain file name in the bundle")
        if not _is_sha256(digest):
            raise _bad(where, f"{MANIFEST_KEY}[{name!r}]", digest, "64 lowercase hex digits")
    missing = [n for n in REQUIRED_FILES if n not in files]
    if missing:
        raise ModelError(f"{where}: {MANIFEST_KEY} does not list {', '.join(missing)}")
    if files[MODEL_FILE] != meta["sha256"]:
        raise ModelError(f"{where}: {MANIFEST_KEY} and sha256 disagree on {MODEL_FILE}")
    return dict(files)

"""The one model wrapper: a TFLite interpreter and its quantization.

Runtime preference (the Pi never imports TensorFlow unless nothing else is
installed): ``ai_edge_litert`` (LiteRT, works with numpy 2), then
``tflite_runtime`` (last release 2.14: needs numpy<2 and Python <= 3.11),
then ``tensorflow.lite`` as a desktop fallback. Input and output dtype,
scale and zero point are read from the interpreter, never assumed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import platform
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .errors import ModelError
from .preprocess import to_model_input

log = logging.getLogger(__name__)

RUNTIMES = ("ai_edge_litert", "tflite_runtime", "tensorflow")
#: what the TFLite C++ runtime prints to fd 2 when it applies its default CPU
#: delegate (at allocate_tensors, once per process). It is not an error, and
#: no environment variable reaches the runtime's minimal logger (checked:
#: TF_CPP_MIN_LOG_LEVEL does not), so it is filtered out at the fd.
RUNTIME_INFO = (b"INFO: Created TensorFlow Lite XNNPACK delegate",)
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_runtime_info():
    """Drop the runtime's INFO line from fd 2 while the body runs; keep all else.

    fd 2 points at a temporary file meanwhile; afterwards every line that is
    not a known INFO line is written to the real stderr, in order.
    """
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep quiet
            yield
            return
        with tempfile.TemporaryFile() as caught:
            try:
                os.dup2(caught.fileno(), 2)
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                kept = [line for line in caught.read().splitlines(keepends=True)
                        if not line.startswith(RUNTIME_INFO)]
                if kept:
                    os.write(2, b"".join(kept))


def open_interpreter(interpreter_cls, **kwargs):
    """An interpreter with its tensors allocated, without the runtime's INFO line."""
    with quiet_runtime_info():
        interpreter = interpreter_cls(**kwargs)
        interpreter.allocate_tensors()
    return interpreter
#: the distributions (pip names) that ship each runtime, for its version
DISTRIBUTIONS = {"ai_edge_litert": ("ai-edge-litert",), "tflite_runtime": ("tflite-runtime",),
                 "tensorflow": ("tensorflow", "tensorflow-cpu")}
CPUINFO_PATH = "/proc/cpuinfo"


@dataclass(frozen=True)
class KnownBad:
    """A runtime release range that is known not to work on a machine (and when)."""

    runtime: str
    first: Tuple[int, ...]  # first bad release
    last: Optional[Tuple[int, ...]]  # last bad release, None = every later one too
    machine: str  # platform.machine()
    foreign_cpuinfo: bool  # only where /proc/cpuinfo does not describe an ARM CPU
    problem: str


#: Evidence (docs/arm64-emulation.md; Debian arm64 userland, Python 3.11, the
#: shipped model): under qemu-user 7.2 (Debian Bookworm's qemu-user-static)
#: ai-edge-litert 2.2.0 and 2.3.0 die with SIGSEGV (si_addr 0x8) while creating
#: the Interpreter; 1.2.0, 1.4.0, 2.0.2, 2.1.0 and 2.1.3 run. The crash comes
#: right after the bundled cpuinfo library reads /proc/cpuinfo, which qemu 7.2
#: passes through from the x86 host: with an ARM /proc/cpuinfo bind-mounted
#: over it qemu 7.2 runs 2.3.0, and qemu-user 10.0 (which emulates an ARM
#: /proc/cpuinfo) runs 1.2.0-2.3.0 with QEMU_CPU cortex-a53, a72, a76 and max.
#: A Raspberry Pi has an ARM /proc/cpuinfo, so this entry only matches such
#: emulators. (qemu 7.2 also gets wrong int8 outputs from 2.1.6 and 2.3.0 with
#: its default "max" CPU; the golden self-test refuses those, no entry needed.)
KNOWN_BAD = (
    KnownBad("ai_edge_litert", (2, 2, 0), None, "aarch64", True,
             "segfaults creating the Interpreter where /proc/cpuinfo is not an ARM one "
             "(user-mode qemu older than 8, e.g. Debian Bookworm's qemu-user-static 7.2); "
             "use qemu-user >= 8 (bookworm-backports) there"),
)


def _version_tuple(text: str) -> Tuple[int, ...]:
    """``"2.3.0"`` -> (2, 3, 0); a suffix (``rc1``, ``+local``) is ignored; () if none."""
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def runtime_version(name: str) -> str:
    """The installed release of a runtime ("unknown" when no distribution says)."""
    from importlib import metadata

    for dist in DISTRIBUTIONS.get(name, ()):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def read_cpuinfo(path: str = CPUINFO_PATH) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def arm_cpuinfo(text: str) -> bool:
    """Does this /proc/cpuinfo describe an ARM CPU (as the kernel or qemu >= 8 writes it)?"""
    return any(line.startswith("CPU implementer") for line in text.splitlines())


def known_problem(name: str, version: str, machine: Optional[str] = None,
                  cpuinfo: Optional[str] = None) -> Optional[str]:
    """Why ``name`` ``version`` is known not to work on this machine, or None."""
    machine = platform.machine() if machine is None else machine
    release = _version_tuple(version)
    for bad in KNOWN_BAD:
        if bad.runtime != name or bad.machine != machine or not release:
            continue
        if release < bad.first or (bad.last is not None and release > bad.last):
            continue
        if bad.foreign_cpuinfo and arm_cpuinfo(read_cpuinfo() if cpuinfo is None else cpuinfo):
            continue
        return bad.problem
    return None


def runtime_report(name: str) -> dict:
    """Runtime, release, machine and (if any) why that combination is known bad."""
    version = runtime_version(name)
    machine = platform.machine()
    return {"runtime": name, "version": version, "machine": machine,
            "problem": known_problem(name, version, machine)}


def _interpreter_class(name: str):
    if name == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter
    elif name == "tflite_runtime":
        from tflite_runtime.interpreter import Interpreter
    elif name == "tensorflow":
        # Desktop fallback only, reached when neither LiteRT nor tflite-runtime is
        # installed (the Pi's [pi] extra always brings ai-edge-litert). Loaded by
        # name so no daemon module carries a TensorFlow import a Pi could trip on.
        Interpreter = importlib.import_module("tensorflow").lite.Interpreter
    else:
        raise ModelError(f"unknown TFLite runtime {name!r}; choose from {', '.join(RUNTIMES)}")
    return Interpreter


def importable_runtime(preferred: Optional[Sequence[str]] = None) -> Tuple[str, type]:
    """The first runtime that imports, as (name, Interpreter class); not yet vetted."""
    errors = []
    for name in preferred or RUNTIMES:
        try:
            return name, _interpreter_class(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise ModelError("no TFLite runtime is installed; install ai-edge-litert "
                     "(pip install 'happyhouse[pi]') or tflite-runtime. Tried: " + "; ".join(errors))


def pick_runtime(preferred: Optional[Sequence[str]] = None) -> Tuple[str, type]:
    """The first importable runtime as (name, Interpreter class), refused if known bad."""
    name, interpreter_cls = importable_runtime(preferred)
    # checked before any Interpreter exists: a known crash becomes a clear error
    found = runtime_report(name)
    if found["problem"]:
        raise ModelError(f"{name} {found['version']} on {found['machine']} is known not to "
                         f"work: {found['problem']}")
    return name, interpreter_cls


@dataclass(frozen=True)
class TensorSpec:
    shape: Tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @classmethod
    def from_detail(cls, detail: dict) -> "TensorSpec":
        scale, zero = detail.get("quantization", (0.0, 0))
        return cls(tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"]).name,
                   float(scale), int(zero))

    @property
    def quantized(self) -> bool:
        return self.dtype in ("int8", "uint8") and self.scale > 0

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "dtype": self.dtype, "scale": self.scale,
                "zero_point": self.zero_point}


#: what a classifier's output tensor holds. ``probability``: the happy score
#: itself (every bundle before format 3). ``view_logits``: one logit per view of
#: the face (the crop and its mirror image); the happy score is the mean of their
#: sigmoids, computed here in float. An int8 sigmoid output has 256 fixed levels
#: (scale about 1/256), at most three above 0.99, so a threshold a house's confident
#: model needs up there cannot be served; an int8 logit has its calibrated range
#: instead and stays fine where the sigmoid is flat.
PROBABILITY, VIEW_LOGITS = "probability", "view_logits"
SCORE_KINDS = (PROBABILITY, VIEW_LOGITS)
#: views a logit output may hold per image: the face, and its mirror image
MAX_VIEWS = 2


def mean_sigmoid(logits: np.ndarray) -> np.ndarray:
    """The mean over the last axis of sigmoid(logits), computed without overflow."""
    logits = np.asarray(logits, np.float64)
    return np.mean(0.5 * (1.0 + np.tanh(0.5 * logits)), axis=-1)


class Classifier:
    """Scores prepared uint8 RGB crops with a single-output TFLite model.

    ``score`` says what the output tensor holds (:data:`SCORE_KINDS`); the
    bundle says which (``output.score`` in ``model.json``).
    """

    def __init__(self, model: Union[str, Path, bytes], threads: int = 1,
                 runtimes: Optional[Sequence[str]] = None, score: str = PROBABILITY,
                 label: Optional[str] = None) -> None:
        # label: how messages name the model (a bundle reads it through its folder held
        # open, /proc/self/fd/N/model.tflite, and names it by its own path)
        label = label or ("<bytes>" if isinstance(model, (bytes, bytearray)) else str(model))
        if score not in SCORE_KINDS:
            raise ModelError(f"model {label}: unknown output kind {score!r}; this build serves "
                             f"{', '.join(SCORE_KINDS)}: upgrade happyhouse")
        self.score_kind = score
        # the runtime reads a model given as bytes from that buffer: kept alive with it
        self._model_bytes = model if isinstance(model, (bytes, bytearray)) else None
        self.runtime, self._interp = load_interpreter(model, threads, runtimes, label)
        self.runtime_version = runtime_version(self.runtime)
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"model {label} must have one input and one output, "
                             f"has {len(inputs)} and {len(outputs)}")
        self._in_index, self._out_index = inputs[0]["index"], outputs[0]["index"]
        self.input = TensorSpec.from_detail(inputs[0])
        self.output = TensorSpec.from_detail(outputs[0])
        if len(self.input.shape) != 4 or self.input.shape[0] != 1 or self.input.shape[3] != 3:
            raise ModelError(f"model {label} input must be 1xHxWx3, got {self.input.shape}")
        if score == PROBABILITY and self.views != 1:
            raise ModelError(f"model {label} must output one score, got shape {self.output.shape}")
        if not 1 <= self.views <= MAX_VIEWS:
            raise ModelError(f"model {label} must output one logit per view (1 to {MAX_VIEWS}), got "
                             f"shape {self.output.shape}")
        log.debug("model %s on %s: input %s, output %s (%s)", label, self.runtime, self.input,
                  self.output, score)

    @property
    def views(self) -> int:
        """How many values the output holds per image (2: the face and its mirror image)."""
        return int(np.prod(self.output.shape))

    @property
    def runtime_label(self) -> str:
        """The runtime and its release, e.g. ``ai_edge_litert 2.3.0``: what the logs name."""
        return f"{self.runtime} {self.runtime_version}"

    @property
    def input_size(self) -> Tuple[int, int]:
        return self.input.shape[1], self.input.shape[2]

    def quantize_input(self, unit: np.ndarray) -> np.ndarray:
        """float32 [0,1] NHWC -> the interpreter's input dtype, using its own scale/zero point."""
        if not self.input.quantized:
            return unit.astype(self.input.dtype, copy=False)
        info = np.iinfo(self.input.dtype)
        q = np.round(unit / self.input.scale) + self.input.zero_point
        return np.clip(q, info.min, info.max).astype(self.input.dtype)

    def dequantize_output(self, raw: np.ndarray) -> np.ndarray:
        """Raw output values as floats (a probability or logits, as :attr:`score_kind` says)."""
        if not self.output.quantized:
            return raw.astype(np.float32)
        return (raw.astype(np.float32) - self.output.zero_point) * np.float32(self.output.scale)

    def score_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Happy scores (a 1-d array) from raw outputs: one invoke's tensor, or
        :meth:`raw_outputs`' rows."""
        values = self.dequantize_output(np.asarray(raw))
        if self.score_kind == PROBABILITY:
            return values.reshape(-1)
        return mean_sigmoid(values.reshape(-1, self.views)).astype(np.float32)

    def invoke_raw(self, model_input: np.ndarray) -> np.ndarray:
        """One invoke on an already-typed 1xHxWxC tensor; returns the raw output tensor."""
        self._interp.set_tensor(self._in_index, model_input)
        self._interp.invoke()
        return self._interp.get_tensor(self._out_index).copy()

    def raw_outputs(self, images_uint8: np.ndarray) -> np.ndarray:
        """Raw (still quantized) outputs, one per image (a row per image when there are
        two views): what golden vectors compare."""
        batch = to_model_input(images_uint8)
        if batch.shape[1:3] != self.input_size:
            raise ModelError(f"model expects {self.input_size[0]}x{self.input_size[1]} input, "
                             f"got {batch.shape[1]}x{batch.shape[2]}: preprocessing does not "
                             f"match this model")
        quantized = self.quantize_input(batch)
        shape = () if self.views == 1 else (self.views,)
        return np.stack([self.invoke_raw(quantized[i:i + 1]).reshape(shape)
                         for i in range(len(batch))])

    def scores(self, images_uint8: np.ndarray) -> np.ndarray:
        """Happy probabilities in [0, 1] for uint8 RGB image(s) of the model's input size."""
        return self.score_from_raw(self.raw_outputs(images_uint8))

    def score(self, image_uint8: np.ndarray) -> float:
        return float(self.scores(image_uint8[None] if image_uint8.ndim == 3 else image_uint8)[0])


def load_interpreter(model: Union[str, Path, bytes], threads: int = 1,
                     runtimes: Optional[Sequence[str]] = None, label: Optional[str] = None):
    """(runtime name, allocated interpreter) for a model file or its bytes.

    A file the runtime cannot read is a ModelError with the runtime's first
    line, never the runtime's own exception type.
    """
    runtime, interpreter_cls = pick_runtime(runtimes)
    label = label or ("<bytes>" if isinstance(model, (bytes, bytearray)) else str(model))
    try:
        if isinstance(model, (bytes, bytearray)):
            interp = open_interpreter(interpreter_cls, model_content=bytes(model),
                                      num_threads=threads)
        else:
            if not Path(model).is_file():
                raise ModelError(f"model file {label} does not exist")
            interp = open_interpreter(interpreter_cls, model_path=str(model), num_threads=threads)
    except ModelError:
        raise
    except Exception as exc:  # the runtimes raise ValueError/RuntimeError for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {label} cannot be loaded by {runtime}: {first[:200]}") from None
    return runtime, interp

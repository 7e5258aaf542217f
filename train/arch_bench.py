"""Time candidate architectures as float32 and full-int8 TFLite (random weights).

Accuracy does not depend on this, speed does: it answers "which layer mix
makes int8 actually faster than float32 on the target CPU?". Run with
``python -m happyhouse.train.arch_bench [--only NAME ...]``; it prints one
line per candidate and writes JSON to ``--out`` if given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

from happyhouse.daemon.errors import ConfigError, DataError
from happyhouse.daemon.filesafety import a_path

#: the name its one-line errors and Ctrl-C carry (the shared ``happyhouse-...`` form)
PROG = "happyhouse-train-arch-bench"


def _candidates() -> Dict[str, Callable]:
    from . import models

    k = models.keras()
    L = k.layers

    def cbr(x, filters, kernel, strides=1, padding="valid"):
        """Conv (no bias) + BatchNorm + ReLU: every candidate's building block."""
        x = L.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
        return L.ReLU()(L.BatchNormalization()(x))

    def plain(widths, first_stride=2, pool="avg"):
        def build():
            inp = L.Input((64, 64, 3))
            x = inp
            for i, w in enumerate(widths):
                x = cbr(x, w, 3, 2 if i or first_stride == 2 else 1, "same")
            x = _head(L, x, pool)
            return k.Model(inp, x)
        return build

    def patchify(widths, patch=4, pool="avg"):
        def build():
            inp = L.Input((64, 64, 3))
            x = cbr(inp, widths[0], patch, patch)
            for w in widths[1:]:
                x = cbr(x, w, 3, 2, "same")
            x = _head(L, x, pool)
            return k.Model(inp, x)
        return build

    def depthwise(widths, pool="avg"):
        def build():
            inp = L.Input((64, 64, 3))
            x = cbr(inp, widths[0], 3, 2, "same")
            for w in widths[1:]:
                x = L.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)
                x = L.BatchNormalization()(x)
                x = L.ReLU()(x)
                x = cbr(x, w, 1)
            x = _head(L, x, pool)
            return k.Model(inp, x)
        return build

    def double(widths, patch=2):
        """Patchify stem then two 3x3 convs per stage (more MACs per op call)."""
        def build():
            inp = L.Input((64, 64, 3))
            x = cbr(inp, widths[0], patch, patch)
            for w in widths[1:]:
                x = cbr(x, w, 3, 1, "same")
                x = L.MaxPooling2D(2)(x)
            x = _head(L, x, "avg")
            return k.Model(inp, x)
        return build

    return {
        "happymodel": lambda: models.build("happymodel"),
        "dw4_16-32-64-128": depthwise([16, 32, 64, 128]),
        "plain4_16-32-64-64": plain([16, 32, 64, 64]),
        "plain4_32-64-128-128": plain([32, 64, 128, 128]),
        "plain4_32-64-128-128_gap": plain([32, 64, 128, 128], pool="gap"),
        "plain4_32-64-128-128_flat": plain([32, 64, 128, 128], pool="flatten"),
        "plain5_s1_32-32-64-128-128": plain([32, 32, 64, 128, 128], first_stride=1),
        "patch4_32-64-128": patchify([32, 64, 128]),
        "patch4_64-128-256": patchify([64, 128, 256]),
        "patch2_32-64-128-128": patchify([32, 64, 128, 128], patch=2),
        "double_p2_32-64-128-128": double([32, 64, 128, 128]),
        "patch4_64-128-128": patchify([64, 128, 128]),
        "patch4_96-128-256": patchify([96, 128, 256]),
        "patch4_64-128-256_p2": patchify([64, 128, 256], patch=2),
        "plain3_s4_64-128-192": patchify([64, 128, 192]),
        "smilenet_32-48-48-64-128": lambda: models.build("smilenet-plain"),
        "smilenet_32-64-64-128": lambda: models.smilenet(layers=((32, 2), (64, 2), (64, 2), (128, 2))),
        "smilenet_32-64-64s1-64-128": lambda: models.smilenet(
            layers=((32, 2), (64, 2), (64, 1), (64, 2), (128, 2))),
        "smilenet_32-32s1-64-64-128": lambda: models.smilenet(
            layers=((32, 2), (32, 1), (64, 2), (64, 2), (128, 2))),
        "smilenet_32-64-64-64s1-128": lambda: models.smilenet(
            layers=((32, 2), (64, 2), (64, 2), (64, 1), (128, 2))),
        "smilenet_64-64-128-128": lambda: models.smilenet(layers=((64, 2), (64, 2), (128, 2), (128, 2))),
        "default": lambda: models.build("default"),
    }


def _head(L, x, pool):
    if pool == "avg":
        x = L.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
        x = L.Flatten()(x)
    elif pool == "gap":
        x = L.GlobalAveragePooling2D()(x)
    else:
        x = L.Flatten()(x)
    return L.Dense(1, activation="sigmoid")(x)


def convert(model, int8: bool, per_tensor: bool = False, batch1: bool = True) -> bytes:
    """float32 or full-int8 TFLite; ``batch1`` fixes the batch so Flatten needs no
    SHAPE/STRIDED_SLICE/PACK ops (they run outside XNNPACK and split the graph)."""
    import tensorflow as tf

    if batch1:
        model = with_batch1(model)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        rng = np.random.default_rng(0)

        def rep():
            for _ in range(32):
                yield [rng.random((1,) + tuple(model.input_shape[1:]), dtype=np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        if per_tensor:
            conv._experimental_disable_per_channel = True
    return conv.convert()


def with_batch1(model):
    """The same layers and weights behind an input of fixed batch 1."""
    from . import models

    k = models.keras()
    inp = k.Input(batch_shape=(1,) + tuple(model.input_shape[1:]))
    return k.Model(inp, model(inp))


def _interpreter(content: bytes, xnnpack: bool = True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=content, num_threads=1, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    det = interp.get_input_details()[0]
    interp.set_tensor(det["index"], np.zeros(det["shape"], dtype=det["dtype"]))
    return interp


def time_interleaved(contents: Dict[str, tuple], rounds: int = 40, block: int = 10) -> Dict[str, float]:
    """Median ms per invoke for each (bytes, xnnpack) variant, timed in turns.

    Every variant runs one block per round, so a machine shared with other
    work slows all of them alike and the float/int8 ratio stays meaningful.
    """
    interps = {name: _interpreter(c, x) for name, (c, x) in contents.items()}
    for interp in interps.values():
        for _ in range(5):
            interp.invoke()
    samples: Dict[str, list] = {name: [] for name in interps}
    for _ in range(rounds):
        for name, interp in interps.items():
            t0 = time.perf_counter()
            for _ in range(block):
                interp.invoke()
            samples[name].append((time.perf_counter() - t0) / block * 1000.0)
    return {name: round(float(np.median(v)), 4) for name, v in samples.items()}


def int8_ops(content: bytes) -> List[str]:
    interp = _interpreter(content, xnnpack=False)
    return sorted({op["op_name"] for op in interp._get_ops_details()})


def bench(name: str, build: Callable) -> dict:
    model = build()
    macs = _macs(model)
    f32 = convert(model, False)
    i8 = convert(model, True)
    variants = {"float_ms": (f32, True), "int8_ms": (i8, True),
                "int8_pertensor_ms": (convert(model, True, per_tensor=True), True),
                "int8_dynamic_batch_ms": (convert(model, True, batch1=False), True),
                "float_no_xnnpack_ms": (f32, False), "int8_no_xnnpack_ms": (i8, False)}
    ms = time_interleaved(variants)
    return {"name": name, "params": int(model.count_params()), "mmacs": round(macs / 1e6, 2),
            **ms, "speedup": round(ms["float_ms"] / ms["int8_ms"], 2),
            "speedup_pertensor": round(ms["float_ms"] / ms["int8_pertensor_ms"], 2),
            "int8_bytes": len(i8), "int8_ops": int8_ops(i8)}


def _macs(model) -> float:
    total = 0.0
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in ("Conv2D", "DepthwiseConv2D", "Dense"):
            out = layer.output.shape
            spatial = float(np.prod(out[1:-1])) if len(out) > 2 else 1.0
            kernel = layer.get_weights()[0].shape
            if cls == "DepthwiseConv2D":
                total += spatial * out[-1] * kernel[0] * kernel[1]
            else:
                total += spatial * float(np.prod(kernel))
    return total


def check_out(out: Optional[str]) -> None:
    """DataError, before minutes of timing, for an --out file that cannot be written
    (the results were lost to a traceback at the first write)."""
    if not out:
        return
    from happyhouse.daemon.filesafety import check_file_creatable

    path = check_file_creatable(out, "--out")
    folder = path.parent
    if not folder.is_dir():
        raise DataError(f"--out {out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"--out {out} cannot be written: {folder} is not writable")


def write_results(out: str, results: List[dict]) -> None:
    """Whole or not at all: a run killed during a write truncated the earlier results."""
    from happyhouse.daemon.filesafety import write_text_file

    write_text_file(out, json.dumps(results, indent=1), "--out")


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.cli_errors import run_main

    parser = argparse.ArgumentParser(prog="python -m happyhouse.train.arch_bench", description=__doc__)
    parser.add_argument("--only", nargs="*", help="candidate names to run (default: all)")
    parser.add_argument("--out", type=a_path, help="write results as JSON here")
    args = parser.parse_args(argv)
    return run_main(PROG, lambda: _main(args))


def _main(args: argparse.Namespace) -> int:
    check_out(args.out)
    cands = _candidates()  # builders only: no model is built or timed yet
    unknown = [name for name in args.only or () if name not in cands]
    if unknown:
        raise ConfigError(f"--only: no candidate named {', '.join(unknown)} "
                          f"(candidates: {', '.join(cands)})")
    names = args.only or list(cands)
    results = []
    for name in names:
        row = bench(name, cands[name])
        results.append(row)
        sys.stdout.write(f"{name:32s} params={row['params']:>8d} MMAC={row['mmacs']:>7.2f} "
                         f"float={row['float_ms']:.3f}ms int8={row['int8_ms']:.3f}ms "
                         f"int8/tensor={row['int8_pertensor_ms']:.3f}ms "
                         f"x{row['speedup']:.2f}/x{row['speedup_pertensor']:.2f} "
                         f"int8(dyn batch)={row['int8_dynamic_batch_ms']:.3f} "
                         f"noXNN f/i8={row['float_no_xnnpack_ms']:.3f}/{row['int8_no_xnnpack_ms']:.3f} "
                         f"KB={row['int8_bytes'] / 1024:.0f} "
                         f"ops={','.join(row['int8_ops'])}\n")
        sys.stdout.flush()
        if args.out:
            write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

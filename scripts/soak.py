"""Soak the door loop: many thousands of frames, sampling RSS, open fds and threads.

Runs the real Door with the real pipeline (shipped bundle, face gate, LiteRT),
a real Latch on a MockFactory and a FakeSource on a fake clock (so the loop
runs as fast as the CPU allows; unlocks and relocks happen in fake time), and
reports resident memory (VmRSS), open file descriptors (/proc/self/fd) and
live threads at regular intervals, and their growth after warm-up.

    python scripts/soak.py --frames 20000 [--h5 test_happy.h5] [--json]

Without ``--h5`` (or ``$HAPPYHOUSE_DATA``) the frames are synthetic (no face: the
gate runs on every frame, the model never). Not run in CI (tests/reliability/
test_soak.py, marker ``soak``, runs it with HAPPYHOUSE_SOAK=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def door_frames(h5: Optional[str], count: int = 24):
    import numpy as np

    if h5:
        import h5py

        from happyhouse.daemon.preprocess import to_door_frame

        with h5py.File(h5, "r") as handle:
            x, y = handle["test_set_x"][:], handle["test_set_y"][:].ravel()
        happy = [to_door_frame(im) for im, label in zip(x, y) if label == 1][: count // 2]
        other = [to_door_frame(im) for im, label in zip(x, y) if label == 0][: count // 4]
        hall = [np.full((480, 640, 3), 100 + i, np.uint8) for i in range(count // 4)]
        return happy + other + hall
    rng = np.random.default_rng(0)
    return [rng.integers(80, 120, (480, 640, 3), dtype=np.uint8) for _ in range(count)]


def soak(frames: int, h5: Optional[str] = None, threshold: float = 0.3, every: int = 1000,
         state_dir: Optional[str] = None) -> dict:
    import tempfile

    from gpiozero.pins.mock import MockFactory

    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.latch import Latch
    from happyhouse.daemon.notify import Notifier
    from happyhouse.daemon.pipeline import Pipeline
    from happyhouse.daemon.door import Door
    from happyhouse.daemon.fakes import FakeSource, fake_clock

    state = state_dir or tempfile.mkdtemp(prefix="hh-soak-")
    cfg = load_config(None, {"latch.gpio": "mock", "service.state_dir": state,
                             "model.threshold": threshold, "decision.unlock_seconds": 0.5,
                             "decision.cooldown_seconds": 0.0})
    pipeline = Pipeline.from_config(cfg)
    calls = {"observe": 0, "faces": 0}
    observe = pipeline.observe

    def counted(frame):  # the same pipeline, counted: the soak is of inference too
        obs = observe(frame)
        calls["observe"] += 1
        calls["faces"] += obs.face is not None
        return obs

    pipeline.observe = counted
    images = door_frames(h5)
    clock, sleep = fake_clock()
    source = FakeSource(images, fps=15, clock=clock, sleep=sleep, loop=True)
    factory = MockFactory()
    latch = Latch(cfg.latch_pin, pin_factory=factory, max_open_s=cfg.decision_max_unlock_seconds,
                  clock=clock)
    sent: List[str] = []
    notifier = Notifier({"NOTIFY_SOCKET": "/unused", "WATCHDOG_USEC": "2000000"},
                        sender=lambda m: sent.append(m[:12]) or True)
    door = Door(cfg, source, pipeline, latch, notifier, clock=clock)
    samples = []
    source.open()
    door.start()
    started = time.perf_counter()
    cpu0 = time.process_time()
    try:
        while door.frames < frames:
            door.step()
            if door.frames % every == 0 and (not samples or samples[-1]["frames"] != door.frames):
                samples.append({"frames": door.frames, "rss_kb": rss_kb(), "fds": open_fds(),
                                "threads": threading.active_count(),
                                "seconds": round(time.perf_counter() - started, 1)})
                del sent[:]  # the notifier log is the harness's, not the door's
    finally:
        latch.close()
        source.close()
    warm = samples[min(1, len(samples) - 1)] if samples else None
    last = samples[-1] if samples else None
    return {
        "frames": door.frames, "fresh": door.fresh_frames, "unlocks": door.unlocks,
        "pipeline_calls": calls["observe"], "faces": calls["faces"], "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "rss_kb_first": samples[0]["rss_kb"] if samples else None,
        "rss_kb_after_warmup": warm["rss_kb"] if warm else None,
        "rss_kb_last": last["rss_kb"] if last else None,
        "rss_growth_kb_after_warmup": (last["rss_kb"] - warm["rss_kb"]) if warm else None,
        "fd_growth_after_warmup": (last["fds"] - warm["fds"]) if warm else None,
        "thread_growth_after_warmup": (last["threads"] - warm["threads"]) if warm else None,
        "samples": samples, "data": h5 or "synthetic",
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20000)
    parser.add_argument("--every", type=int, default=1000, help="sample every N frames")
    parser.add_argument("--h5", help="course HDF5 for real door frames (default: "
                                     "$HAPPYHOUSE_DATA/happy-house/test_happy.h5 if present)")
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    h5 = args.h5
    if h5 is None and os.environ.get("HAPPYHOUSE_DATA"):
        candidate = Path(os.environ["HAPPYHOUSE_DATA"]) / "happy-house" / "test_happy.h5"
        h5 = str(candidate) if candidate.is_file() else None
    report = soak(args.frames, h5, args.threshold, args.every)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        for s in report["samples"]:
            sys.stdout.write(f"{s['frames']:>7} frames  rss {s['rss_kb'] / 1024:7.1f} MiB  "
                             f"fds {s['fds']:3d}  threads {s['threads']:2d}  {s['seconds']:6.1f} s\n")
        sys.stdout.write(
            f"{report['frames']} frames ({report['pipeline_calls']} scored, {report['faces']} "
            f"with a face, {report['unlocks']} unlocks) in {report['seconds']} s "
            f"({report['cpu_seconds']} s CPU); after warm-up: RSS "
            f"{report['rss_growth_kb_after_warmup']:+d} KiB, fds "
            f"{report['fd_growth_after_warmup']:+d}, threads "
            f"{report['thread_growth_after_warmup']:+d}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

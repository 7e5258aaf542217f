"""Per-stage cost of one door decision, the whole pipeline, and frame age.

Everything here uses the daemon's own modules (FaceGate, prepare_frame,
Classifier, Vote, Pipeline, the newest-frame reader): the figures are those
of the code that ships.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from happyhouse.daemon.pipeline import SCORE_STEPS, Observation, Pipeline
from happyhouse.daemon.sources import Frame
from happyhouse.daemon.vote import Vote

from .frames import BenchFrames, live_source, yuyv_to_bgr

STAGES = ("frame", "gate", "level", "preprocess", "invoke", "geometry", "vote")
STAGE_HELP = {
    "frame": "capture: YUYV->BGR conversion + new frame",
    "gate": "FaceGate.find (largest face)",
    "level": "crop + face mesh, turned crops for a rolled head (bundles that level)",
    "preprocess": "prepare_frame (unless levelled) + normalize_light",
    "geometry": "face mesh (unless levelled) + aligned features + head + fusion",
    "invoke": "Classifier.score: to_model_input + quantize + int8 TFLite invoke + dequantize",
    "vote": "threshold, Vote.add",
}
#: the report's name for each step Pipeline.score_face marks
STEP_STAGES = {"level": "level", "prepare": "preprocess", "model": "invoke",
               "geometry": "geometry"}


def summary_ms(samples_ns: List[int], cpu_ns: Optional[List[int]] = None) -> Optional[Dict[str, float]]:
    """Wall-clock median / p95 / mean in ms (and the same for CPU time); None for no samples.

    CPU time is this process's (all its threads), so on a machine shared with
    other work it shows what a dedicated core would take; wall time includes
    the time other processes held the core.
    """
    if not samples_ns:
        return None
    ms = np.asarray(samples_ns, np.float64) / 1e6
    out = {"median": round(float(np.median(ms)), 4), "p95": round(float(np.percentile(ms, 95)), 4),
           "mean": round(float(ms.mean()), 4), "n": int(len(ms))}
    if cpu_ns:
        cpu = np.asarray(cpu_ns, np.float64) / 1e6
        out.update(cpu_median=round(float(np.median(cpu)), 4),
                   cpu_p95=round(float(np.percentile(cpu, 95)), 4))
    return out


def now_ns() -> tuple:
    """(wall, process CPU) in ns, taken together at a stage boundary."""
    return time.perf_counter_ns(), time.process_time_ns()


@dataclass
class Parts:
    """The daemon's own pipeline, built from its config and bundle exactly as the service does."""

    cfg: Any
    pipeline: Pipeline

    @property
    def bundle(self):
        return self.pipeline.bundle

    @property
    def classifier(self):
        return self.pipeline.classifier

    @property
    def gate(self):
        return self.pipeline.gate

    def new_vote(self) -> Vote:
        cfg = self.cfg
        return Vote(cfg.decision_votes_needed, cfg.decision_window, cfg.decision_max_gap,
                    cfg.camera_stale_after)


def build_parts(bundle_path: Optional[str], threads: int, config: Optional[str] = None) -> Parts:
    """``Pipeline.from_config``: bundle, self-tested classifier and face gate."""
    from happyhouse.daemon.config import load_config

    overrides = {"model.threads": threads, "model.bundle": bundle_path}
    cfg = load_config(config, overrides, required=config is not None)
    return Parts(cfg, Pipeline.from_config(cfg, door=False))  # timed, never armed


def time_stages(parts: Parts, frames: BenchFrames, count: int, warmup: int) -> Dict[str, Any]:
    """Each stage of the decision timed separately, frame after frame.

    The calls are ``Pipeline.observe``'s own: the gate, then ``Pipeline.score_face``,
    which marks the end of each of its steps (level, prepare, model, geometry), then
    ``Pipeline.decide`` and the vote.
    """
    pipeline, vote = parts.pipeline, parts.new_vote()
    wall: Dict[str, List[int]] = {s: [] for s in STAGES + ("total",)}
    cpu: Dict[str, List[int]] = {s: [] for s in STAGES + ("total",)}
    faces = happy = unlocks = 0
    for i in range(warmup + count):
        k = i % len(frames)
        t0 = now_ns()
        frame = Frame(yuyv_to_bgr(frames.yuyv[k]), time.monotonic(), i)
        t1 = now_ns()
        box = pipeline.gate.find(frame.image)
        t2 = now_ns()
        marks: Dict[str, tuple] = {}
        score = None
        if box is not None:
            score, _ = pipeline.score_face(frame.image, box, pipeline.gate.eye_roll,
                                           lambda step: marks.__setitem__(step, now_ns()))
        obs = Observation(frame.timestamp, frame.seq, box, score, pipeline.decide(score), 0.0)
        if vote.add(obs, now=time.monotonic()):
            vote.reset("unlocked")
            unlocks += i >= warmup
        t5 = now_ns()
        if i < warmup:
            continue
        faces += box is not None
        happy += obs.happy
        # each step runs from the end of the one before (the gate's, for the first)
        ends = [("gate", t2)] + [(STEP_STAGES[step], marks[step]) for step in SCORE_STEPS
                                 if step in marks]
        spans = [("frame", t0, t1), ("gate", t1, t2), ("vote", ends[-1][1], t5),
                 ("total", t0, t5)]
        spans += [(stage, start, end) for (_, start), (stage, end) in zip(ends, ends[1:])]
        for stage, start, end in spans:
            wall[stage].append(end[0] - start[0])
            cpu[stage].append(end[1] - start[1])
    out: Dict[str, Any] = {s: summary_ms(wall[s], cpu[s]) for s in wall}
    out.update(frames=count, faces=faces, face_rate=round(faces / count, 3), happy=happy,
               unlocks=unlocks)
    return out


def time_pipeline(parts: Parts, frames: BenchFrames, count: int, warmup: int) -> Dict[str, Any]:
    """The whole decision per frame: capture conversion -> observe -> vote."""
    observe, vote = parts.pipeline.observe, parts.new_vote()
    wall: List[int] = []
    cpu: List[int] = []
    started = now_ns()
    for i in range(warmup + count):
        if i == warmup:
            started = now_ns()
        t0 = now_ns()
        frame = Frame(yuyv_to_bgr(frames.yuyv[i % len(frames)]), time.monotonic(), i)
        if vote.add(observe(frame), now=time.monotonic()):
            vote.reset("unlocked")
        t1 = now_ns()
        if i >= warmup:
            wall.append(t1[0] - t0[0])
            cpu.append(t1[1] - t0[1])
    ended = now_ns()
    return {"ms": summary_ms(wall, cpu),
            "fps": round(count / ((ended[0] - started[0]) / 1e9), 1),
            "fps_cpu": round(count / max((ended[1] - started[1]) / 1e9, 1e-9), 1),
            "implementation": "Pipeline.observe"}


def frame_age(parts: Parts, frames: BenchFrames, seconds: float, fps: float) -> Dict[str, Any]:
    """Age of the frame at the moment its decision is made, with a live 30 fps source.

    The consumer loop is the service's: newest frame -> observe -> vote, over the
    daemon's own newest-frame reader.
    """
    observe, vote = parts.pipeline.observe, parts.new_vote()
    ages: List[int] = []
    source = live_source(frames.yuyv, fps)
    with source:
        source.latest(2.0)  # the first frame: the capture thread is running
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            frame = source.latest(0.2)
            if frame is None:
                continue
            obs = observe(frame)
            now = time.monotonic()
            if vote.add(obs, now=now):
                vote.reset("unlocked")
            ages.append(int((now - frame.timestamp) * 1e9))
        produced = source.frames_read
    stats = summary_ms(ages) or {}
    return {**stats, "source_fps": fps, "frame_period_ms": round(1000.0 / fps, 2),
            "decided": len(ages), "produced": produced, "dropped": max(0, produced - len(ages) - 1)}

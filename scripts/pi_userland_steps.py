"""The door's own code, run step by step for ``scripts/pi-userland-check``.

Runs with whichever Python imports ``happyhouse``: the emulated aarch64 one
(the Pi's userland) and the x86 venv (the reference). Each step prints one
JSON object on stdout; ``scripts/pi-userland-check`` compares and judges.
Only the daemon's public API is used (no TensorFlow, no test helpers).

  selftest  golden vectors of every shipped bundle; BlazeFace finds faces; the
            face mesh gives landmarks (their centres, for comparison with x86)
  scores    per-frame face box and raw int8 score on Happy House frames
  frames    write door frames (PNG) for the CLI's image-folder source
  service   a short real-time service run on a fake camera with a mock pin
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
from gpiozero.pins.mock import MockFactory

# every daemon name the steps use, imported up front: a name the daemon moved
# fails every step at once, also in the x86 test (tests/test_pi_userland_check.py)
from happyhouse.daemon.blazeface import BlazeFace
from happyhouse.daemon.bundle import default_bundle_path, load_bundle
from happyhouse.daemon.cli import build_parser
from happyhouse.daemon.config import load_config
from happyhouse.daemon.datasets import load_dataset
from happyhouse.daemon.facegate import FaceGate
from happyhouse.daemon.fakes import FakeSource
from happyhouse.daemon.geometry import MESH_FILE, FaceMesh
from happyhouse.daemon.pipeline import Pipeline
from happyhouse.daemon.preprocess import Preprocess, prepare_frame, to_door_frame
from happyhouse.daemon.runner import run_service
from happyhouse.daemon.runtime import PROBABILITY, importable_runtime, runtime_report

MODELS = Path(__file__).resolve().parent.parent / "daemon" / "models"


def _door_frames(data: str, limit: int):
    """(BGR 640x480 door frames, labels) from a course HDF5, as happyhouse-eval makes them."""
    ds = load_dataset(data, size=None, limit=limit)
    return [to_door_frame(image, 640, 480) for image in ds.images], [int(v) for v in ds.labels]


def selftest(args) -> dict:
    """Every shipped asset under daemon/models/: bundles reproduce their golden vectors,
    the BlazeFace detector loads and finds faces in real frames."""
    # the installed package's own assets (what a Pi gets), checked against the source tree
    installed = default_bundle_path().parent
    names = sorted(p.name for p in installed.iterdir() if p.is_dir())
    shipped = sorted(p.name for p in MODELS.iterdir() if p.is_dir()) if MODELS.is_dir() else names
    out = {"python": platform.python_version(), "assets": []}
    out.update(runtime_report(_runtime_name()))
    if names != shipped:
        out["missing"] = sorted(set(shipped) - set(names))
    folders = [(name, installed / name) for name in names]
    if args.bundle:  # a bundle of the caller's (an adapted one, another format) as well
        folders.append((f"bundle {Path(args.bundle).name}", Path(args.bundle)))
    for name, folder in folders:
        if (folder / "model.json").is_file():
            bundle = load_bundle(folder)
            clf = bundle.classifier()
            inputs, want = bundle.golden()
            got = clf.raw_outputs(inputs).reshape(-1).astype(np.int64)
            checked = bundle.self_test(clf)  # raises if the runtime disagrees
            worst = int(np.max(np.abs(got - np.asarray(want).reshape(-1).astype(np.int64))))
            out["assets"].append({"asset": name, "kind": "bundle", "vectors": checked,
                                  "max_diff": worst, "ok": True})
        elif (folder / MESH_FILE).is_file():
            mesh = FaceMesh(folder / MESH_FILE)
            gate = FaceGate.from_config(load_config(None, {}))
            frames, _ = _door_frames(args.data, args.limit)
            centres = []
            for frame in frames:
                box = gate.find(frame)
                if box is not None:
                    # the contract's square crop, which fills past the frame's edge (the
                    # gate's box may reach past it; slicing wrapped round to the far side)
                    crop = prepare_frame(frame, box, Preprocess(size=max(box[2], box[3])))
                    points = mesh.points(np.ascontiguousarray(crop))
                    centres.append([round(float(v), 3) for v in points[:, :2].mean(axis=0)])
            finite = all(np.isfinite(c).all() for c in centres)
            out["assets"].append({"asset": name, "kind": "landmarks", "faces": len(centres),
                                  "centres": centres, "ok": finite and len(centres) > 0})
        elif list(folder.glob("face_detection*.tflite")):
            detector = BlazeFace()
            min_score = load_config(None, {}).face_min_score
            frames, _ = _door_frames(args.data, args.limit)
            found = sum(bool(detector.detect(frame, min_score)) for frame in frames)
            out["assets"].append({"asset": name, "kind": "detector", "frames": len(frames),
                                  "faces": found, "ok": found >= 0.8 * len(frames)})
        else:
            out["assets"].append({"asset": name, "kind": "unknown", "ok": False})
    return out


def _model(args) -> dict:
    """The config override for ``--bundle`` ({} for the shipped bundle)."""
    return {"model.bundle": str(Path(args.bundle).resolve())} if args.bundle else {}


def _runtime_name() -> str:
    return importable_runtime()[0]


def scores(args) -> dict:
    """The door pipeline on each frame: face box, score, verdict and the score's parts
    (the int8 classifier's dequantized output, the geometry stage's, if any)."""
    # door=False: scores measured to compare two machines, never a latch (a bundle too poor
    # to arm a door is still compared)
    pipeline = Pipeline.from_config(load_config(None, {"latch.gpio": "mock", **_model(args)}),
                                    door=False)
    frames, labels = _door_frames(args.data, args.limit)
    rows = []
    for index, frame in enumerate(frames):
        obs = pipeline.observe_image(frame, seq=index)
        rows.append({"i": index, "label": labels[index],
                     "face": None if obs.face is None else [int(v) for v in obs.face],
                     "score": None if obs.score is None else float(obs.score),
                     "happy": bool(obs.happy),
                     "parts": {k: float(v) for k, v in obs.parts.items()}})
    return {"runtime": pipeline.runtime_label, "machine": platform.machine(),
            "threshold": pipeline.threshold, "stages": pipeline.stages,
            "output_scale": score_step(pipeline.classifier), "rows": rows}


def score_step(classifier) -> float:
    """How far one int8 output step moves the happy score: the output's scale for a
    probability, at most a quarter of it for a logit (the sigmoid's slope is <= 1/4)."""
    scale = float(classifier.output.scale)
    return scale if classifier.score_kind == PROBABILITY else 0.25 * scale


def frames(args) -> dict:
    """PNG door frames for the CLI: ``--pick`` indices into the file, written in order."""
    images, labels = _door_frames(args.data, args.limit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n, index in enumerate(args.pick):
        path = out / f"frame-{n:03d}.png"
        cv2.imwrite(str(path), images[index])
        written.append({"path": str(path), "label": labels[index]})
    return {"frames": written}


def service(args) -> dict:
    """The door service, real time: smiling frames, then an empty hall; mock pin, sd_notify.

    The latch must open during the smiles, relock after ``unlock_seconds`` and
    stay locked through the empty hall; systemd must hear READY and STOPPING.
    """
    images, labels = _door_frames(args.data, args.limit)
    smiles = [images[i] for i in args.pick for _ in range(args.repeat)]
    empty = [np.full_like(images[0], 128)] * int(args.fps * args.empty_seconds)
    state = tempfile.mkdtemp(prefix="pi-userland-state-")
    # one opening only: the smiles last long enough for a loaded, emulated pipeline
    # (~1 frame/s) to gather its votes, and the cooldown outlasts them
    cfg = load_config(None, {"latch.gpio": "mock", "service.state_dir": state, **_model(args),
                             "decision.unlock_seconds": args.unlock_seconds,
                             "decision.cooldown_seconds": 60.0,
                             # emulated time is not a Pi's: a loaded emulator scores a frame in
                             # ~0.6 s, past the Pi's freshness limits (0.5 s, 0.6 s gap); the
                             # vote rule itself (3 of 5) is unchanged
                             "camera.stale_after": 5.0, "decision.max_gap": 5.0})
    sock_path = os.path.join(state, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.2)
    messages: list = []
    done = threading.Event()

    def listen() -> None:  # as systemd does: the queue holds only ~10 datagrams
        while not done.is_set():
            try:
                messages.append(sock.recv(4096).decode())
            except socket.timeout:
                continue

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    os.environ["NOTIFY_SOCKET"] = sock_path
    # loaded (and self-tested) before the camera plays: under emulation that takes
    # seconds, and the smiles would have played to a service still starting
    pipeline = Pipeline.from_config(cfg)
    factory = MockFactory()
    source = FakeSource(smiles + empty, fps=args.fps)
    # stopped as systemd stops it, by SIGTERM once the frames have played: frames the
    # (emulated, slow) pipeline skips as stale never count, so --max-frames could wait forever
    playing = (len(smiles) + len(empty)) / args.fps
    stopper = threading.Timer(playing + 1.0, os.kill, (os.getpid(), signal.SIGTERM))
    stopper.start()
    started = time.monotonic()
    try:
        code = run_service(cfg, build_parser().parse_args([]), pin_factory=factory, source=source,
                           pipeline=pipeline)
    finally:
        stopper.cancel()
    wall = time.monotonic() - started
    time.sleep(0.3)
    done.set()
    listener.join()
    sock.close()
    pin = factory.pin(cfg.latch_pin)
    history = [[round(float(s.timestamp), 3), bool(s.state)] for s in pin.states]
    return {"exit_code": code, "wall_s": round(wall, 1), "smile_frames": len(smiles),
            "empty_frames": len(empty), "unlock_seconds": args.unlock_seconds,
            "pin_history": history, "notify": [m.split("\n")[0][:60] for m in messages]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("selftest", "scores", "frames", "service"))
    parser.add_argument("--data", required=True, help="a course HDF5 (test_happy.h5)")
    parser.add_argument("--limit", type=int, help="at most N frames per class")
    parser.add_argument("--pick", type=int, nargs="*", default=[], help="frame indices")
    parser.add_argument("--out", help="frames: output folder")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=10, help="service: frames per smile")
    parser.add_argument("--empty-seconds", type=float, default=6.0)
    parser.add_argument("--unlock-seconds", type=float, default=2.0)
    parser.add_argument("--bundle", help="a model bundle to use instead of the shipped one "
                                         "(selftest: as well as the installed ones)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = {"selftest": selftest, "scores": scores, "frames": frames, "service": service}[args.step](args)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

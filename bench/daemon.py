"""The real daemon in a subprocess: time to READY=1 and resident memory after warm-up.

The daemon runs exactly as systemd would start it (``python -m
happyhouse.daemon.cli``, mock GPIO, a folder of 640x480 door frames as the
camera) with ``NOTIFY_SOCKET`` pointing at a datagram socket bound here. The
clock starts just before the process is spawned and stops when ``READY=1``
arrives; VmRSS is read from ``/proc/<pid>/status`` while it runs.

The fake camera is a folder of only a few frames: the image-folder source
holds its pictures decoded in memory (0.9 MB each at 640x480), about what a
real capture's buffers take, so more would inflate the daemon's RSS with
test data.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

#: shared objects that would mean TensorFlow was loaded into the daemon
_TF_MARKERS = ("/tensorflow/", "libtensorflow", "/keras/")


def _status_kb(pid: int) -> Dict[str, int]:
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


def _cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU time of a process (all threads) from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tensorflow_mapped(pid: int) -> Optional[bool]:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None
    return any(marker in maps for marker in _TF_MARKERS)


def write_frames(bgr_frames, folder: Path, count: int) -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(bgr_frames[:count]):
        cv2.imwrite(str(folder / f"frame_{i:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def _receive(sock: socket.socket, deadline: float) -> List[str]:
    """Datagrams until ``deadline`` (at least one try); each split into lines."""
    lines: List[str] = []
    while True:
        remaining = deadline - time.monotonic()
        sock.settimeout(max(remaining, 0.001))
        try:
            data = sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return lines
        lines.extend(data.decode("utf-8", "replace").splitlines())
        if remaining <= 0:
            return lines


def measure_daemon(bgr_frames, threads: int = 1, warmup_s: float = 3.0, timeout_s: float = 30.0,
                   bundle: Optional[str] = None, frame_count: int = 4,
                   config: Optional[str] = None) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hh-bench-") as tmp:
        tmp_path = Path(tmp)
        folder = write_frames(bgr_frames, tmp_path / "frames", frame_count)
        address = str(tmp_path / "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(address)
        cmd = [sys.executable, "-m", "happyhouse.daemon.cli", "--source", str(folder),
               "--gpio", "mock", "--threads", str(threads), "--log-level", "WARNING",
               "--state-dir", str(tmp_path / "state")]
        if bundle:
            cmd += ["--model", bundle]
        if config:
            cmd += ["--config", config]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
        env["NOTIFY_SOCKET"] = address
        stderr_path = tmp_path / "stderr.txt"
        try:
            with open(stderr_path, "wb") as err:
                started = time.monotonic()
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, env=env)
                try:
                    result = _watch(proc, sock, started, warmup_s, timeout_s)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
        finally:
            sock.close()
        tail = stderr_path.read_text(errors="replace").strip().splitlines()
        result["command"] = " ".join(cmd[1:4] + [f"<folder of {frame_count} 640x480 JPEGs>"] + cmd[5:])
        if tail and result.get("error"):
            result["error"] += f": {tail[-1]}"
        return result


def _watch(proc: subprocess.Popen, sock: socket.socket, started: float, warmup_s: float,
           timeout_s: float) -> Dict[str, Any]:
    messages: List[str] = []
    ready_s = ready_cpu = None
    deadline = started + timeout_s
    while ready_s is None and time.monotonic() < deadline and proc.poll() is None:
        got = _receive(sock, min(deadline, time.monotonic() + 0.05))
        messages += got
        if "READY=1" in got:
            ready_s = time.monotonic() - started
            ready_cpu = _cpu_seconds(proc.pid)
    out: Dict[str, Any] = {"ready_s": None if ready_s is None else round(ready_s, 3),
                           "ready_cpu_s": None if ready_s is None or ready_cpu is None
                           else round(ready_cpu, 3),
                           "rss_mb": None, "rss_max_mb": None, "hwm_mb": None}
    if ready_s is None:
        out["error"] = ("daemon exited with status %s before READY=1" % proc.returncode
                        if proc.poll() is not None else f"no READY=1 within {timeout_s:g}s")
        return out
    samples = []
    end = time.monotonic() + warmup_s
    while time.monotonic() < end and proc.poll() is None:
        messages += _receive(sock, time.monotonic() + 0.1)
        kb = _status_kb(proc.pid)
        if "VmRSS" in kb:
            samples.append(kb)
    out["tensorflow_loaded"] = _tensorflow_mapped(proc.pid)
    if samples:
        out["rss_mb"] = round(samples[-1]["VmRSS"] / 1024, 1)
        out["rss_max_mb"] = round(max(s["VmRSS"] for s in samples) / 1024, 1)
        out["hwm_mb"] = round(samples[-1].get("VmHWM", 0) / 1024, 1)
        # private (anonymous) vs file-backed pages: shared libraries are most of the latter
        out["rss_anon_mb"] = round(samples[-1].get("RssAnon", 0) / 1024, 1)
        out["rss_file_mb"] = round(samples[-1].get("RssFile", 0) / 1024, 1)
    out["running_after_warmup"] = proc.poll() is None
    out["status"] = next((m[7:] for m in reversed(messages) if m.startswith("STATUS=")), None)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            out["error"] = "daemon did not stop within 10s of SIGTERM"
    messages += _receive(sock, time.monotonic() + 0.05)
    out["exit_status"] = proc.returncode
    out["stopping_sent"] = any(m == "STOPPING=1" for m in messages)
    if not samples:
        out["error"] = f"daemon exited with status {proc.returncode} during warm-up"
    return out

"""The door's page under load: does the decision loop wait on it?

The real :class:`~happyhouse.daemon.service.Service` with its page
(:class:`~happyhouse.daemon.web.demo.BackgroundDoor`: fake camera, mock pin, the
shipped model and face gate) runs here, pinned to the bench's core; the browsers
are another process on the other cores, as a phone or laptop would be another
machine. Phases alternate, so drift on a shared machine hits both alike:

* **page off**: nobody watches (the page idles);
* **page loaded**: ``streams`` MJPEG viewers reading as fast as they can,
  ``stalled`` viewers that connected and stopped reading (their socket buffers
  fill; the server drops them after its send timeout, and they reconnect), a
  slowloris client dribbling a request, and a status poller.

The door never opens for a smile here (threshold 1.0), so it decides on every
frame. Decision rate = frames the door decided on per second (its loop's throughput,
the camera delivering faster than it can decide). Relock delay = how much
longer than ``unlock_seconds`` the latch stayed driven after an exit-button
opening, from the mock pin's own timestamps.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

#: frames per second the fake camera delivers: faster than the loop decides
SOURCE_FPS = 1000.0
UNLOCK_SECONDS = 1.0


def _clients(port: int, streams: int, stalled: int, seconds: float, cores: Sequence[int]) -> None:
    """The browsers (a child process): readers, stalled readers, a slowloris, a poller."""
    import threading

    if cores:
        os.sched_setaffinity(0, cores)
    end = time.monotonic() + seconds
    request = f"GET /live.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    def reader() -> None:
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(request)
                    while time.monotonic() < end and s.recv(65536):
                        pass
            except OSError:
                time.sleep(0.2)

    def stalled_reader() -> None:
        while time.monotonic() < end:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(request)
                while time.monotonic() < end:  # never reads; the server gives up on it
                    time.sleep(0.5)
                    try:
                        s.send(b"")
                    except OSError:
                        break
                s.close()
            except OSError:
                time.sleep(0.2)

    def slowloris() -> None:
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    for ch in b"GET /api/status.json HTTP/1.1\r\nX-Slow: ":
                        if time.monotonic() >= end:
                            return
                        s.send(bytes([ch]))
                        time.sleep(0.5)
            except OSError:
                time.sleep(0.2)

    def poller() -> None:
        import http.client

        while time.monotonic() < end:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/status.json", headers={"Host": f"127.0.0.1:{port}"})
                conn.getresponse().read()
                conn.close()
            except OSError:
                pass
            time.sleep(1.0)

    workers = ([threading.Thread(target=reader) for _ in range(streams)]
               + [threading.Thread(target=stalled_reader) for _ in range(stalled)]
               + [threading.Thread(target=slowloris), threading.Thread(target=poller)])
    for w in workers:
        w.daemon = True
        w.start()
    for w in workers:
        w.join(max(0.0, end - time.monotonic()) + 6)


def _rate(door, seconds: float) -> float:
    service = door.service
    start_frames, start = service.frames, time.monotonic()
    time.sleep(seconds)
    return (service.frames - start_frames) / (time.monotonic() - start)


def _relock_delays(door, openings: int) -> List[float]:
    """Exit-button openings; how long past ``unlock_seconds`` each stayed driven (ms)."""
    pin = door.pin
    seen = len(pin.states)
    for _ in range(openings):
        door.service.door.request_exit()
        time.sleep(UNLOCK_SECONDS + 0.6)
    states = list(pin.states)[seen:]
    delays = []
    for on, off in zip(states, states[1:]):
        if on.state and not off.state:  # a mock pin stamps each change with the time since the last
            delays.append((off.timestamp - UNLOCK_SECONDS) * 1000)
    return delays


def measure_page(frames_bgr: Sequence[np.ndarray], seconds: float = 4.0, rounds: int = 2,
                 streams: int = 20, stalled: int = 3, config: Optional[str] = None) -> Dict[str, Any]:
    """Decision rate and relock delay with the page idle and under load."""
    from happyhouse.daemon.config import config_from_flags
    from happyhouse.daemon.web.demo import BackgroundDoor

    own = sorted(os.sched_getaffinity(0))
    others = [c for c in range(os.cpu_count() or 1) if c not in own] or own
    with tempfile.TemporaryDirectory(prefix="happyhouse-bench-page-") as tmp:
        cfg = config_from_flags(config, {
            "latch.gpio": "mock", "service.state_dir": str(Path(tmp) / "state"),
            "web.enabled": True, "web.address": "127.0.0.1:0",
            "web.max_streams": max(24, streams + stalled),
            "decision.unlock_seconds": UNLOCK_SECONDS, "decision.cooldown_seconds": 0.5,
            "camera.stale_after": 10.0,
            # never happy: the door decides on every frame (no smile opens it and pauses the
            # vote); the openings measured are the exit button's
            "model.threshold": 1.0})
        door = BackgroundDoor(cfg, list(frames_bgr), fps=SOURCE_FPS).start()
        try:
            time.sleep(1.0)  # warm-up: the first frames, the interpreter's caches
            port = door.page.httpd.server_address[1]
            off: List[float] = []
            on: List[float] = []
            relock_off = _relock_delays(door, 2)
            relock_on: List[float] = []
            encoded_before = door.page.live.encoded
            for _ in range(rounds):
                off.append(_rate(door, seconds))
                load = multiprocessing.get_context("spawn").Process(
                    target=_clients, args=(port, streams, stalled, seconds + 4.5, others))
                load.start()
                time.sleep(1.5)  # the viewers connect
                on.append(_rate(door, seconds))
                relock_on += _relock_delays(door, 1)
                load.join(timeout=30)
                if load.is_alive():
                    load.kill()
            encoded = door.page.live.encoded - encoded_before
        finally:
            door.stop()
        if door.error is not None:
            return {"error": f"the door failed under the page's load: {door.error!r}"}
    rate_off, rate_on = statistics.median(off), statistics.median(on)
    return {
        "rate_off_fps": round(rate_off, 1), "rate_loaded_fps": round(rate_on, 1),
        "rate_drop_pct": round(100.0 * (1 - rate_on / rate_off), 1) if rate_off else None,
        "rounds_off": [round(r, 1) for r in off], "rounds_loaded": [round(r, 1) for r in on],
        "relock_delay_off_ms": round(max(relock_off), 1) if relock_off else None,
        "relock_delay_loaded_ms": round(max(relock_on), 1) if relock_on else None,
        "streams": streams, "stalled": stalled, "seconds": seconds, "rounds": rounds,
        "live_jpegs": encoded, "client_cores": others,
    }

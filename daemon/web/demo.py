"""The door's page over a demo door: a fake camera playing frames, a mock latch pin.

For trying the page without a Pi (and for its browser test and benchmark)::

    python -m happyhouse.daemon.demo --data ../shared/datasets/genki4k-train --out /tmp/demo
    python -m happyhouse.daemon.web.demo --frames /tmp/demo/smiles      # then open the URL

:class:`BackgroundDoor` runs the real :class:`~..service.Service` with its page in a
thread, over :class:`~..fakes.FakeSource` and gpiozero's ``MockFactory``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..errors import DataError
from ..filesafety import a_path, path_arg
from ..pictures import PICTURE_EXTS, list_pictures, read_picture


def read_frames(folder: Path) -> List[np.ndarray]:
    folder = Path(folder)
    if not folder.is_dir():  # iterdir's FileNotFoundError was a traceback
        raise DataError(f"--frames {folder} " + ("is not a folder" if folder.exists()
                                                 else "does not exist") + ": give a folder of "
                        "door frames (python -m happyhouse.daemon.demo writes one)")
    try:
        paths = list_pictures(folder).pictures  # the pictures every tool reads
    except OSError as exc:
        raise DataError(f"cannot read --frames {folder}: {exc.strerror or exc}") from None
    frames = []
    for path in paths:
        with contextlib.suppress(ValueError):  # an unreadable one is left out, as before
            frames.append(read_picture(path))
    if not frames:
        raise DataError(f"{folder} holds no readable pictures ({', '.join(PICTURE_EXTS)})")
    return frames


class BackgroundDoor:
    """The door service and its page, stepping in a background thread until :meth:`stop`."""

    def __init__(self, cfg, frames: Sequence[np.ndarray], fps: float = 15.0, *,
                 pin_factory=None, pipeline=None) -> None:
        from gpiozero.pins.mock import MockFactory

        from ..fakes import FakeSource
        from ..service import Service
        from .server import DoorPage

        self.factory = pin_factory if pin_factory is not None else MockFactory()
        self.source = FakeSource(list(frames), fps=fps, loop=True, description="demo frames")
        self.service = Service.from_config(cfg, pin_factory=self.factory, source=self.source,
                                           pipeline=pipeline)
        self.page = DoorPage(cfg, self.service)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None

    @property
    def url(self) -> str:
        return self.page.url

    @property
    def pin(self):
        return self.service.parts.latch.pin

    def start(self) -> "BackgroundDoor":
        self.service.start()
        self.page.start()
        self._thread = threading.Thread(target=self._run, name="happyhouse-demo-door", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.service.step()
        except BaseException as exc:  # the test or bench reads it
            self.error = exc
            self.service.parts.lock()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.service.stop("demo over")
            self.service.close()
        finally:
            self.page.close()

    def __enter__(self) -> "BackgroundDoor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: Optional[List[str]] = None) -> int:
    from ..cli_errors import run_main

    return run_main("happyhouse-page-demo", lambda: _main(argv))


def _main(argv: Optional[List[str]]) -> int:
    from ..config import config_from_flags
    from ..journal import setup_logging

    parser = argparse.ArgumentParser(prog="python -m happyhouse.daemon.web.demo",
                                     description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--frames", required=True, type=path_arg, help="folder of door frames to play")
    parser.add_argument("--config", type=a_path, help="INI config file (default: the defaults)")
    parser.add_argument("--web", default="127.0.0.1:8321", metavar="ADDR:PORT")
    parser.add_argument("--token-file", default="", help="the page's token file (needed off-host)")
    parser.add_argument("--state-dir", default="/tmp/happyhouse-page-demo",
                        help="where unlock snapshots and collected frames go")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: Ctrl-C)")
    args = parser.parse_args(argv)
    if not 0 <= args.seconds < float("inf"):  # nan or -1 ran until killed
        raise DataError(f"--seconds must be 0 (until Ctrl-C) or more, got {args.seconds}")
    cfg = config_from_flags(args.config, {"web.enabled": True, "web.address": args.web,
                                          "web.token_file": args.token_file,
                                          "latch.gpio": "mock",
                                          "service.state_dir": args.state_dir,
                                          "service.snapshot_on_unlock": True})
    setup_logging("INFO")
    with BackgroundDoor(cfg, read_frames(args.frames)) as door:
        sys.stdout.write(f"the door's page: {door.url} (Ctrl-C stops)\n")
        sys.stdout.flush()
        end = time.monotonic() + args.seconds if args.seconds > 0 else None
        while end is None or time.monotonic() < end:
            if door.error is not None:
                raise door.error
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

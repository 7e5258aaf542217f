"""sd_notify for the door service: READY, WATCHDOG, STATUS, RELOADING, STOPPING.

Sends a plain non-blocking ``AF_UNIX`` datagram to ``$NOTIFY_SOCKET`` (the
protocol is one datagram of ``KEY=value`` lines; a leading ``@`` names an
abstract socket). ``systemd.daemon.notify`` (systemd-python) is available
with ``use_systemd_python=True`` but is not the default: libsystemd's
sd_notify sends *blocking*, so a manager whose queue is full would freeze the
door loop (seen in CI: the loop hung in ``unix_wait_for_peer``).
systemd-python still provides the journal handler.
Outside systemd (no ``NOTIFY_SOCKET``) every call is a cheap no-op.

Notification must never take the door down: send errors are logged once and
swallowed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping, Optional

log = logging.getLogger("happyhouse.daemon.notify")


def _systemd_sender() -> Optional[Callable[[str], bool]]:
    try:
        from systemd import daemon  # systemd-python
    except ImportError:
        return None
    notify = getattr(daemon, "notify", None)
    return notify if callable(notify) else None


class _SocketSender:
    """The fallback: one datagram per message to ``$NOTIFY_SOCKET``."""

    def __init__(self, address: str) -> None:
        if address.startswith("@"):
            address = "\0" + address[1:]  # Linux abstract namespace
        elif not address.startswith("/"):
            raise ValueError(f"NOTIFY_SOCKET={address!r} is neither a path nor @abstract")
        self.address = address
        self._sock: Optional[socket.socket] = None

    def __call__(self, message: str) -> bool:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # never block the door loop on a slow or stuck manager: a full queue drops the message
        self._sock.sendto(message.encode("utf-8"), socket.MSG_DONTWAIT, self.address)
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


#: READY and STOPPING wait up to this long for room in a full queue; WATCHDOG and
#: STATUS never wait (the next one follows soon, and the door loop must not stall)
IMPORTANT_RETRY_S = 1.0
RETRY_PAUSE = 0.005


class Notifier:
    """Talks to systemd's service manager (or to nothing, outside systemd).

    ``environ`` and ``sender`` are injectable for tests; by default the
    process environment and the non-blocking socket sender are used.
    """

    def __init__(self, environ: Optional[Mapping[str, str]] = None,
                 sender: Optional[Callable[[str], bool]] = None,
                 use_systemd_python: bool = False) -> None:
        env = os.environ if environ is None else environ
        self.socket_path = env.get("NOTIFY_SOCKET") or None
        self.watchdog_interval = _watchdog_interval(env)
        self._closer: Optional[Callable[[], None]] = None
        self._failed = False
        self.backend = "none"
        self.sent = 0
        if sender is not None:
            self._send, self.backend = sender, "custom"
        elif self.socket_path is None:
            self._send = None
        else:
            native = _systemd_sender() if use_systemd_python else None
            if native is not None:
                self._send, self.backend = native, "systemd-python"
            else:
                try:
                    fallback = _SocketSender(self.socket_path)
                except ValueError as exc:
                    log.warning("sd_notify disabled: %s", exc)
                    self._send = None
                else:
                    self._send, self._closer, self.backend = fallback, fallback.close, "socket"

    @property
    def enabled(self) -> bool:
        return self._send is not None

    def notify(self, *lines: str, retry_for: float = 0.0) -> bool:
        """Send ``KEY=value`` lines in one datagram; False if not sent.

        A full receiver queue drops the message at once, unless ``retry_for``
        gives it that many seconds of short retries (READY and STOPPING).
        """
        if self._send is None or not lines:
            return False
        message = "\n".join(_clean(line) for line in lines)
        deadline = time.monotonic() + retry_for
        try:
            while True:
                try:
                    ok = bool(self._send(message))
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(RETRY_PAUSE)
        except Exception as exc:  # a full socket buffer or a vanished manager must not matter
            if not self._failed:
                log.warning("sd_notify to %s failed: %s (further failures not logged)",
                            self.socket_path, exc)
                self._failed = True
            return False
        self.sent += ok
        return ok

    def ready(self, status: Optional[str] = None) -> bool:
        # a lost READY=1 makes systemd kill the service at TimeoutStartSec: worth a
        # short wait (sent once; the latch is locked until the first vote)
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []),
                           retry_for=IMPORTANT_RETRY_S)

    def reloading(self, status: Optional[str] = None) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload match the reload to this message
        usec = int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}",
                           *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self, status: Optional[str] = None) -> bool:
        # sent once, after the latch is locked: waiting here cannot hold a door open
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []),
                           retry_for=IMPORTANT_RETRY_S)

    def close(self) -> None:
        if self._closer is not None:
            self._closer()


def _clean(line: str) -> str:
    # a newline inside a value would start a new (bogus) assignment
    return line.replace("\n", " ").replace("\r", " ")


def _watchdog_interval(env: Mapping[str, str]) -> Optional[float]:
    """Seconds between pings: half of ``WATCHDOG_USEC``; None when not watched.

    ``WATCHDOG_PID`` set to another process means the watchdog is not ours
    (an inherited environment), as in sd_watchdog_enabled(3).
    """
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r (not a whole number)", usec)
        return None
    return value / 2e6 if value > 0 else None

"""Who may see the door's page: the token, sessions, CSRF and the Host check.

* The token lives in a file readable only by the service user (checked when the
  page starts: a regular file, not a link, owned by this user, no group or other
  access, at least :data:`MIN_TOKEN` characters). Without one the page serves
  only the loopback address (:mod:`.keys` refuses any other bind).
* A browser logs in once with the token (``POST /login``) and gets a session
  cookie (random, HttpOnly, SameSite=Strict, lost when the daemon restarts);
  scripts send ``Authorization: Bearer <token>``. Every comparison with a secret
  is constant-time (:func:`hmac.compare_digest`).
* Each session has a CSRF token the page sends back in ``X-CSRF-Token`` on every
  POST; another site's page cannot read it, so it cannot label or discard.
* Without a token (loopback only) the Host header must name the loopback
  address, so a page on another site cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
import time
from dataclasses import dataclass
from typing import Dict, Optional

from ..errors import ConfigError

MIN_TOKEN = 16
MAX_TOKEN_FILE = 4096
SESSION_COOKIE = "happyhouse_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 64
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def load_token(path: str) -> str:
    """The token in ``path``; a ConfigError saying how to fix the file otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"[web] token_file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"[web] token_file {path} cannot be read: {exc.strerror or exc} "
                          f"(a symbolic link is refused)") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"[web] token_file {path} is not a regular file")
        if info.st_uid != os.geteuid():
            raise ConfigError(f"[web] token_file {path} must belong to the service user "
                              f"(uid {os.geteuid()}); chown it")
        if info.st_mode & 0o077:
            raise ConfigError(f"[web] token_file {path} is readable by others "
                              f"(mode {stat.S_IMODE(info.st_mode):o}); chmod 600 it")
        data = os.read(fd, MAX_TOKEN_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_TOKEN_FILE:
        raise ConfigError(f"[web] token_file {path} is larger than {MAX_TOKEN_FILE} bytes: "
                          f"not a token")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"[web] token_file {path} must hold printable ASCII") from None
    if len(token) < MIN_TOKEN or any(not 33 <= ord(c) <= 126 for c in token):
        raise ConfigError(f"[web] token_file {path} must hold one token of at least "
                          f"{MIN_TOKEN} printable characters, no spaces")
    return token


@dataclass
class Session:
    csrf: str
    expires: float


class Gate:
    """The page's access rules; ``token`` None means loopback-only without login."""

    def __init__(self, token: Optional[str], port: int, host: str = "127.0.0.1",
                 clock=time.monotonic) -> None:
        self.token = token
        self.port = port
        # the loopback names, and the address the page is bound to (127.0.0.2, say)
        bound = f"[{host}]" if ":" in host else host
        self.names = tuple(dict.fromkeys(LOOPBACK_NAMES + (bound.lower(),)))
        self.clock = clock
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()
        # without a token the page has one implicit session, so POSTs still need a CSRF token
        self.open_csrf = secrets.token_urlsafe(24)

    @property
    def needs_login(self) -> bool:
        return self.token is not None

    def host_allowed(self, host: Optional[str]) -> bool:
        """Without a token, only the loopback names (DNS rebinding); with one, any Host."""
        if self.token is not None:
            return True
        if not host:
            return False
        name = host.strip().lower()
        return name in self.names or name in {f"{n}:{self.port}" for n in self.names}

    def token_ok(self, given: Optional[str]) -> bool:
        if self.token is None or given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def login(self, given: Optional[str]) -> Optional[str]:
        """A new session id for the right token, else None."""
        if not self.token_ok(given):
            return None
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= MAX_SESSIONS:  # the oldest login goes
                oldest = min(self._sessions, key=lambda k: self._sessions[k].expires)
                del self._sessions[oldest]
            self._sessions[sid] = Session(secrets.token_urlsafe(24), now + SESSION_SECONDS)
        return sid

    def logout(self, sid: Optional[str]) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    def session(self, sid: Optional[str]) -> Optional[Session]:
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            self._expire(now)
            for key, session in self._sessions.items():  # constant-time per comparison
                if hmac.compare_digest(key.encode(), sid.encode("utf-8", "replace")):
                    return session
        return None

    def csrf_ok(self, expected: str, given: Optional[str]) -> bool:
        return given is not None and hmac.compare_digest(expected.encode(),
                                                         given.encode("utf-8", "replace"))

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[key]

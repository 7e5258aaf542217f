"""The door's page server: the standard library's threading HTTP server.

Why not a framework: the page has a dozen routes, one stream and no templates;
``http.server`` is in every Python on a Pi, adds nothing to install or audit,
and what a framework would add (routing, sessions) is a few lines here, written
against the door's own rules.

What it guards (see :mod:`.auth` for who may ask, :mod:`.labels` for files):

* **It can never open the door.** It is given the :class:`~..service.Service`
  only to read facts and frames from; no route calls anything on the latch.
* Requests are bounded: a body over :data:`MAX_BODY` is refused (413), a
  request line and headers that are not all in within :data:`REQUEST_TIMEOUT`
  (however slowly they trickle) close the connection, connections are capped
  (:data:`EXTRA_CONNECTIONS` beyond the stream slots, and one address may hold half
  of them, so one client alone cannot fill them; more get 503), each client address has a request budget
  (:class:`RateLimit`; 429) and a login-failure budget, spent before any token
  is compared.
* Closing the page (a stop, or a reload that changes its settings or token)
  hangs up every connection it has, kept-alive ones included: an open browser
  is not served by a page that no longer exists.
* The decision loop never waits on the page: the live view is encoded by its
  own thread (:mod:`.live`), each stream writes with a send timeout and is
  dropped when the browser stops reading.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError, HappyHouseError
from ..logtext import clean
from . import auth
from .capture import Capture
from .facts import LastError, status
from .keys import is_loopback, parse_address
from .labels import CollectFolder, LabelError, read_file
from .live import LiveView, TooManyViewers

log = logging.getLogger(__name__)

MAX_BODY = 4096
MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
REQUEST_TIMEOUT = 10.0
#: a stream whose browser accepts nothing for this long is dropped
SEND_TIMEOUT = 5.0
EXTRA_CONNECTIONS = 32
RATE_PER_SECOND = 40.0
RATE_BURST = 400.0
LOGIN_FAILURES = 5  # per address per LOGIN_WINDOW
LOGIN_WINDOW = 60.0
BOUNDARY = "happyhouseframe"
DECISIONS_SHOWN = 50
STATIC = {"/static/page.js": ("page.js", "text/javascript; charset=utf-8"),
          "/static/page.css": ("page.css", "text/css; charset=utf-8")}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the
    # page's own form posts, and the origin check could not tell them from another site's
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_FRAME_PATH = re.compile(r"^/api/frames/([a-z_]{1,20})/([^/]{1,120})(/label)?$")
_SNAPSHOT_PATH = re.compile(r"^/api/decisions/([0-9]{1,12})/snapshot\.jpg$")


class RateLimit:
    """A token bucket per client address (bounded: the oldest addresses are forgotten)."""

    def __init__(self, rate: float = RATE_PER_SECOND, burst: float = RATE_BURST,
                 clock: Callable[[], float] = time.monotonic, kept: int = 1024) -> None:
        self.rate, self.burst, self.clock, self.kept = rate, burst, clock, kept
        self._buckets: Dict[str, Tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, who: str, cost: float = 1.0) -> bool:
        now = self.clock()
        with self._lock:
            tokens = self._tokens(who, now)
            ok = tokens >= cost
            self._buckets.pop(who, None)  # re-inserted last: the newest address
            self._buckets[who] = (tokens - cost if ok else tokens, now)
            while len(self._buckets) > self.kept:
                self._buckets.pop(next(iter(self._buckets)))
        return ok

    def available(self, who: str, cost: float = 1.0) -> bool:
        """Whether ``allow(who, cost)`` would pass now, spending nothing."""
        now = self.clock()
        with self._lock:
            return self._tokens(who, now) >= cost

    def wait(self, who: str, cost: float = 1.0) -> float:
        """Seconds until ``allow(who, cost)`` would pass (0: now)."""
        now = self.clock()
        with self._lock:
            missing = cost - self._tokens(who, now)
        return max(0.0, missing / self.rate) if self.rate > 0 else float("inf")

    def _tokens(self, who: str, now: float) -> float:
        """``who``'s bucket refilled to ``now`` (the lock held)."""
        tokens, then = self._buckets.get(who, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)


class DoorPage:
    """The page over a running service: start() binds and serves, close() stops."""

    def __init__(self, cfg, service, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.service = service
        host, port = parse_address(cfg.web_address)
        token = load_page_token(cfg, host)
        self.host, self.port = host, port
        self.gate = auth.Gate(token, port, host)
        self.live = LiveView(service, cfg.web_stream_fps, cfg.web_stream_width,
                             cfg.web_max_streams)
        root = cfg.web_collect_dir.strip() or str(Path(cfg.service_state_dir) / "collect")
        self.frames = CollectFolder(Path(root))
        self.capture = Capture(service, self.frames.root)
        self.rate = RateLimit(clock=clock)
        self.login_failures = RateLimit(rate=LOGIN_FAILURES / LOGIN_WINDOW, burst=LOGIN_FAILURES,
                                        clock=clock)
        self.last_error = LastError()
        self.httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self.closed = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self.httpd.server_address[1] if self.httpd is not None else self.port
        return f"http://{host}:{port}/"

    def start(self) -> "DoorPage":
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        _Server.address_family = family
        try:
            self.httpd = _Server((self.host, self.port), _Handler, self)
        except OSError as exc:
            raise ConfigError(f"[web] address {self.cfg.web_address} cannot be used: "
                              f"{exc.strerror or exc}") from None
        if self.port == 0:  # tests: the port the system chose
            self.gate.port = self.httpd.server_address[1]
        self.last_error.attach()
        self.live.start()
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="happyhouse-page", daemon=True)
        self._thread.start()
        threading.Thread(target=self.httpd.hang_up_late, args=(self.closed,),
                         name="happyhouse-page-deadlines", daemon=True).start()
        log.info("door page on %s (%s)", self.url,
                 "token required" if self.gate.needs_login else "this machine only, no token")
        return self

    def close(self) -> None:
        """Stop serving; never raises (the door's stop path calls it)."""
        try:
            self.closed.set()
            self.capture.cancel()
            self.live.stop()
            if self.httpd is not None:
                self.httpd.shutdown()
                self.httpd.server_close()
                self.httpd.hang_up_all()
            self.last_error.detach()
        except Exception:
            log.exception("while stopping the door page")


    def serves_token_of(self, cfg) -> bool:
        """Whether this page's token is the one ``cfg``'s token file holds now (a reload
        re-reads it: a rotated or insecure token file restarts the page)."""
        try:
            return load_page_token(cfg, self.host) == self.gate.token
        except ConfigError:
            return False


def load_page_token(cfg, host: str) -> Optional[str]:
    path = cfg.web_token_file.strip()
    if not path:
        if not is_loopback(host):  # config validation says so too; never serve faces openly
            raise ConfigError("[web] token_file is required for a non-loopback address")
        return None
    return auth.load_token(path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16

    def __init__(self, address, handler, page: DoorPage) -> None:
        self.page = page
        slots = page.cfg.web_max_streams + EXTRA_CONNECTIONS
        self.slots = threading.BoundedSemaphore(slots)
        self.per_address = slots // 2
        # open connection -> (client address, monotonic deadline for its request line and
        # headers, or None while a request is being answered)
        self.connections: Dict[socket.socket, Tuple[str, Optional[float]]] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        who = client_address[0]
        with self._connections_lock:
            crowded = sum(1 for w, _ in self.connections.values() if w == who) >= self.per_address
            if not crowded and self.slots.acquire(blocking=False):
                self.connections[request] = (who, time.monotonic() + REQUEST_TIMEOUT)
                taken = True
            else:
                taken = False
        if not taken:
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self.connections.pop(request, None)
            self.slots.release()

    def awaiting_request(self, request, waiting: bool) -> None:
        """A connection starts waiting for a request line and headers (its deadline runs)
        or has them all (no deadline while the request is answered, a stream included)."""
        with self._connections_lock:
            if request in self.connections:
                who, _ = self.connections[request]
                self.connections[request] = (who, time.monotonic() + REQUEST_TIMEOUT
                                             if waiting else None)

    def hang_up_late(self, closed: threading.Event, every: float = 0.5) -> None:
        """Hang up on connections whose request line and headers are overdue: a socket
        timeout alone is per read, and a client sending a byte every few seconds (a
        slowloris) would hold its slot for ever."""
        while not closed.wait(every):
            now = time.monotonic()
            with self._connections_lock:
                late = [c for c, (_, due) in self.connections.items()
                        if due is not None and now > due]
            for conn in late:
                _hang_up(conn)

    def hang_up_all(self) -> None:
        with self._connections_lock:
            open_now = list(self.connections)
        for conn in open_now:
            _hang_up(conn)

    def handle_error(self, request, client_address) -> None:
        log.debug("door page: connection from %s ended with an error", client_address[0],
                  exc_info=True)


def _hang_up(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)  # the handler's next read or write ends it
    except OSError:
        pass


class _Reply(Exception):
    """Ends a request with a status and a short JSON error."""

    def __init__(self, status: HTTPStatus, message: str, headers: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT
    protocol_version = "HTTP/1.1"
    server_version = "happyhouse-page"
    sys_version = ""

    # -- plumbing --------------------------------------------------------------
    @property
    def page(self) -> DoorPage:
        return self.server.page

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("door page: %s %s", self.client_address[0], clean(fmt % args))

    def handle_one_request(self) -> None:
        self.server.awaiting_request(self.connection, True)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.server.awaiting_request(self.connection, False)
        return parsed

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """The standard library's own refusals (a method it has no ``do_`` for, a bad
        request line, headers too long) in the page's form: JSON, with its headers."""
        self.close_connection = True
        headers = {}
        if code == HTTPStatus.NOT_IMPLEMENTED:  # HEAD, PUT, OPTIONS, ...
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, "this page answers GET and POST only"
            headers["Allow"] = "GET, POST"
        status = HTTPStatus(code)
        try:
            self._send_json(status, {"error": clean(message or status.phrase)}, headers)
        except OSError:
            pass

    def _serve(self, method: str) -> None:
        try:
            if self.page.closed.is_set():  # a kept-alive connection outliving its page
                self.close_connection = True
                raise _Reply(HTTPStatus.SERVICE_UNAVAILABLE, "the door page was restarted: reload")
            self._check_request()
            path = urlsplit(self.path).path
            session = self._session()
            if method == "POST":
                self._post(path, session)
            else:
                self._get(path, session)
        except _Reply as reply:
            self._send_json(reply.status, {"error": reply.message}, reply.headers)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        except HappyHouseError as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": clean(str(exc))})

    def _check_request(self) -> None:
        if not self.page.rate.allow(self.client_address[0]):
            raise _Reply(HTTPStatus.TOO_MANY_REQUESTS, "too many requests; slow down",
                         {"Retry-After": "1"})
        if not self.page.gate.host_allowed(self.headers.get("Host")):
            raise _Reply(HTTPStatus.FORBIDDEN, f"open this page as {self.page.url}")
        if self.page.gate.token is None and not is_loopback(self.client_address[0]):
            raise _Reply(HTTPStatus.FORBIDDEN, "this page serves this machine only")

    def _session(self) -> Optional[auth.Session]:
        """The caller's session: the cookie, a Bearer token, or (no token configured) the
        one open session; None = not logged in."""
        gate = self.page.gate
        if not gate.needs_login:
            return auth.Session(gate.open_csrf, float("inf"))
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            self._login_budget_left()
            if gate.token_ok(header[len("Bearer "):].strip()):
                return auth.Session("", float("inf"))  # scripts: no CSRF token, no POSTs
            self._login_failed()
            raise _Reply(HTTPStatus.UNAUTHORIZED, "wrong token")
        return gate.session(self._cookie(auth.SESSION_COOKIE))

    def _cookie(self, name: str) -> Optional[str]:
        raw = self.headers.get("Cookie")
        if not raw:
            return None
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            return None
        return jar[name].value if name in jar else None

    def _login_budget_left(self) -> None:
        """Before any token is compared: an address out of wrong tries gets 429 for the
        right token too, so a guesser can neither go on nor tell when one hits."""
        if not self.page.login_failures.available(self.client_address[0]):
            self._too_many_wrong_tokens()

    def _login_failed(self) -> None:
        if not self.page.login_failures.allow(self.client_address[0]):
            self._too_many_wrong_tokens()

    def _too_many_wrong_tokens(self) -> None:
        # a bucket of LOGIN_FAILURES tries that refills one every LOGIN_WINDOW / LOGIN_FAILURES
        # seconds: the reply says when the next try is due, not "a minute"
        due = max(1, math.ceil(self.page.login_failures.wait(self.client_address[0])))
        raise _Reply(HTTPStatus.TOO_MANY_REQUESTS,
                     f"too many wrong tokens; the next try is checked in {due} s",
                     {"Retry-After": str(due)})

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            raise _Reply(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not chunks")
        if length is None:
            return b""
        if not (length.isascii() and length.isdigit()):  # '²' passes isdigit(), not int()
            raise _Reply(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if int(length) > MAX_BODY:
            self.close_connection = True
            raise _Reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"requests are at most {MAX_BODY} bytes")
        # the body has a whole deadline too (hang_up_late): read before any login, a body
        # trickled a byte at a time held a slot for hours
        self.server.awaiting_request(self.connection, True)
        try:
            body = self.rfile.read(int(length))
        finally:
            self.server.awaiting_request(self.connection, False)
        if len(body) < int(length):
            self.close_connection = True
            raise _Reply(HTTPStatus.REQUEST_TIMEOUT, "the request body did not arrive in time")
        return body

    # -- GET -------------------------------------------------------------------
    def _get(self, path: str, session: Optional[auth.Session]) -> None:
        if path in STATIC:  # no faces: served before login (the login page uses them)
            name, kind = STATIC[path]
            self._send(HTTPStatus.OK, _asset(name), kind)
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if path in ("/", "/index.html"):
            if session is None:
                self._send(HTTPStatus.OK, _asset("login.html"), "text/html; charset=utf-8")
            else:
                html = _asset("index.html").replace(b"{{CSRF}}", session.csrf.encode())
                self._send(HTTPStatus.OK, html, "text/html; charset=utf-8")
            return
        if session is None:
            raise _Reply(HTTPStatus.UNAUTHORIZED, "log in first (the token is in [web] token_file)")
        page = self.page
        snapshot, frame = _SNAPSHOT_PATH.match(path), _FRAME_PATH.match(path)
        if path == "/api/status.json":
            facts = status(page.service, page.last_error)
            facts["collect"] = page.capture.snapshot()
            facts["live_viewers"] = page.live.viewers
            self._send_json(HTTPStatus.OK, facts)
        elif path == "/api/decisions.json":
            entries = page.service.trail.recent(DECISIONS_SHOWN)
            for entry in entries:
                snap = entry.pop("snapshot")
                entry["snapshot"] = (f"/api/decisions/{entry['id']}/snapshot.jpg"
                                     if snap is not None else None)
            self._send_json(HTTPStatus.OK, {"decisions": entries})
        elif snapshot:
            self._snapshot(int(snapshot.group(1)))
        elif path == "/live.mjpg":
            self._stream()
        elif path == "/live.jpg":
            got = page.live.next_jpeg(0, 5.0)
            if got is None:
                raise _Reply(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            self._send(HTTPStatus.OK, got[1], "image/jpeg")
        elif path == "/api/frames.json":
            self._send_json(HTTPStatus.OK, page.frames.listing())
        elif frame and not frame.group(3):  # a frame's image, not its /label action
            folder, name, _ = frame.groups()
            try:
                data = page.frames.frame_bytes(folder, name)
            except LabelError as exc:
                raise _Reply(HTTPStatus.NOT_FOUND, str(exc)) from None
            self._send(HTTPStatus.OK, data, "image/png")
        else:
            raise _Reply(HTTPStatus.NOT_FOUND, "no such page")

    def _snapshot(self, entry_id: int) -> None:
        path = self.page.service.trail.snapshot_of(entry_id)
        if path is None:
            raise _Reply(HTTPStatus.NOT_FOUND, "no snapshot for this decision")
        try:  # a path the door itself wrote, never one from the request
            data = read_file(Path(path), MAX_SNAPSHOT_BYTES)
        except (OSError, LabelError):
            raise _Reply(HTTPStatus.NOT_FOUND, "the snapshot was pruned") from None
        self._send(HTTPStatus.OK, data, "image/jpeg")

    def _stream(self) -> None:
        live = self.page.live
        try:
            with live.watch():  # TooManyViewers comes only from taking the slot
                self._send_stream(live)
        except TooManyViewers as exc:
            raise _Reply(HTTPStatus.SERVICE_UNAVAILABLE, str(exc)) from None

    def _send_stream(self, live: LiveView) -> None:
        try:
            self.connection.settimeout(SEND_TIMEOUT)
            self.close_connection = True
            self.send_response(HTTPStatus.OK)
            self._headers()
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Connection", "close")
            self.end_headers()
            serial = 0
            while not live.stopped:
                got = live.next_jpeg(serial, 5.0)
                if got is None:
                    continue
                serial, jpeg = got
                self.wfile.write(b"".join((
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                    f"\r\n\r\n".encode(), jpeg, b"\r\n")))
                self.wfile.flush()
        except (OSError, ValueError):  # the browser went away or stopped reading
            pass

    # -- POST ------------------------------------------------------------------
    def _post(self, path: str, session: Optional[auth.Session]) -> None:
        body = self._body()
        self._check_origin()
        page = self.page
        if path == "/login":
            self._login(body)
            return
        if path == "/logout":
            page.gate.logout(self._cookie(auth.SESSION_COOKIE))
            self._redirect("/", {"Set-Cookie": _cookie_header("", 0)})
            return
        if session is None:
            raise _Reply(HTTPStatus.UNAUTHORIZED, "log in first")
        if not session.csrf or not page.gate.csrf_ok(session.csrf, self.headers.get("X-CSRF-Token")):
            raise _Reply(HTTPStatus.FORBIDDEN, "missing or wrong CSRF token: reload the page")
        data = _json(body)
        match = _FRAME_PATH.match(path)
        if match and match.group(3):
            folder, name, _ = match.groups()
            try:
                now_in = page.frames.label(folder, name, str(data.get("action")))
            except LabelError as exc:
                raise _Reply(HTTPStatus.CONFLICT, str(exc)) from None
            log.info("door page: %s/%s %s", folder, name,
                     "discarded" if now_in is None else f"labelled {now_in}")
            self._send_json(HTTPStatus.OK, {"folder": now_in, "name": name})
        elif path == "/api/collect":
            try:
                state = page.capture.start(data.get("count"))
            except ValueError as exc:
                raise _Reply(HTTPStatus.CONFLICT, str(exc)) from None
            self._send_json(HTTPStatus.OK, state)
        else:
            raise _Reply(HTTPStatus.NOT_FOUND, "no such action")

    def _check_origin(self) -> None:
        """A browser names the page that sent a POST: it must be this page."""
        origin = self.headers.get("Origin")
        if origin is None:  # not a browser, or a same-origin form in an older one
            return
        if urlsplit(origin).netloc.lower() != (self.headers.get("Host") or "").lower():
            raise _Reply(HTTPStatus.FORBIDDEN, "a request from another site")

    def _login(self, body: bytes) -> None:
        gate = self.page.gate
        if not gate.needs_login:
            self._redirect("/")
            return
        given = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0].strip()
        self._login_budget_left()
        sid = gate.login(given)
        if sid is None:
            self._login_failed()
            log.warning("door page: wrong token from %s", self.client_address[0])
            self._redirect("/?wrong=1")
            return
        log.info("door page: login from %s", self.client_address[0])
        self._redirect("/", {"Set-Cookie": _cookie_header(sid, auth.SESSION_SECONDS)})

    # -- replies ---------------------------------------------------------------
    def _headers(self) -> None:
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)

    def _send(self, code: HTTPStatus, data: bytes, kind: str,
              headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(code)
        self._headers()
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, code: HTTPStatus, value: Any, headers: Optional[Dict[str, str]] = None) -> None:
        data = (json.dumps(value) + "\n").encode()
        self._send(code, data, "application/json", headers)

    def _redirect(self, where: str, headers: Optional[Dict[str, str]] = None) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": where, **(headers or {})})


def _cookie_header(value: str, max_age: int) -> str:
    return (f"{auth.SESSION_COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; "
            f"SameSite=Strict")


def _json(body: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: [[[[...]]]]
        raise _Reply(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(value, dict):
        raise _Reply(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
    return value


_ASSETS: Dict[str, bytes] = {}


def _asset(name: str) -> bytes:
    """A file of the page (package data, read once)."""
    if name not in _ASSETS:
        _ASSETS[name] = resources.files(__package__).joinpath("static", name).read_bytes()
    return _ASSETS[name]

"""The page's defences, as a field probe attacked them: the wrong-token budget, connections
that outlive a page, a rotated token, a slow trickle of headers, one client taking every
slot, a page bound to another loopback address, and requests the standard library
would answer in its own form. Real sockets, a real door service (tests/web/conftest.py)."""

import http.client
import json
import socket
import time

import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon.fakes import FakeSource

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def wait_for(predicate, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError("condition not met in time")


def never_unlocked(door):
    return [s.state for s in door.pin.states if s.state]


def test_no_token_is_compared_once_the_wrong_token_budget_is_spent(start_door, token_path, token):
    """After five wrong tokens the right one still logged in (303 and a cookie), so a
    guesser could go on at the request rate and see when a guess hit."""
    door, client = start_door("others", **{"web.token_file": str(token_path)})
    for _ in range(5):
        assert client.request("POST", "/login", body=b"token=guess-guess-guess-1",
                              headers=FORM)[1]["Location"] == "/?wrong=1"
    status, headers, _ = client.request("POST", "/login", body=f"token={token}".encode(), headers=FORM)
    assert status == 429 and "Set-Cookie" not in headers
    assert client.request("GET", "/api/status.json",
                          headers={"Authorization": f"Bearer {token}"})[0] == 429
    assert never_unlocked(door) == []


def test_a_wrong_bearer_token_spends_the_same_budget(start_door, token_path, token):
    door, client = start_door("others", **{"web.token_file": str(token_path)})
    wrong = {"Authorization": "Bearer guess-guess-guess-1"}
    assert [client.request("GET", "/api/status.json", headers=wrong)[0] for _ in range(6)] == \
        [401] * 5 + [429]
    status, _, _ = client.request("POST", "/login", body=f"token={token}".encode(), headers=FORM)
    assert status == 429


def test_the_wrong_token_reply_says_when_the_next_try_is_checked(start_door, token_path):
    """It said "wait a minute" (Retry-After: 60) while the budget gives one more try every
    12 s: the reply and the docs now say what the bucket does."""
    door, client = start_door("others", **{"web.token_file": str(token_path)})
    wrong = {"Authorization": "Bearer guess-guess-guess-1"}
    for _ in range(5):
        client.request("GET", "/api/status.json", headers=wrong)
    status, headers, body = client.request("GET", "/api/status.json", headers=wrong)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 12
    assert f"the next try is checked in {headers['Retry-After']} s" in body.decode()


def test_a_body_trickled_a_byte_at_a_time_is_hung_up_on(start_door, monkeypatch):
    """The headers had a whole deadline, the body only a per-read timeout: a POST /login
    with a long Content-Length, fed a byte every few seconds, held its slot for hours before
    any login (two addresses took every slot)."""
    import happyhouse.daemon.web.server as server

    monkeypatch.setattr(server, "REQUEST_TIMEOUT", 1.0)
    door, client = start_door("others")
    slow = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    slow.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4000\r\n"
                 b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    started, hung_up = time.monotonic(), None
    for _ in range(40):  # a byte every 0.2 s, each well inside the per-read timeout
        try:
            slow.sendall(b"t")
            slow.settimeout(0.2)
            slow.recv(4096)  # a reply (408) or the end of the connection: it is over
        except socket.timeout:
            continue
        except OSError:
            pass
        hung_up = time.monotonic() - started
        break
    slow.close()
    assert hung_up is not None and hung_up < 4.0, hung_up
    assert client.request("GET", "/api/status.json")[0] == 200


def keep_alive_get(conn, port, path="/api/status.json"):
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_closing_the_page_hangs_up_on_kept_alive_connections(start_door):
    """A reload that turned the page off (or gave it a token) still served an open
    browser over its kept-alive connections, POSTs included."""
    door, client = start_door("others")
    conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=5)
    assert keep_alive_get(conn, client.port) == 200
    door.page.close()
    with pytest.raises((OSError, http.client.HTTPException)):
        keep_alive_get(conn, client.port)  # the same socket, never reconnected
        raise AssertionError("served by a closed page")
    conn.close()


def write_token(tmp_path, token):
    path = tmp_path / "web-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def test_a_reload_with_a_rotated_token_restarts_the_page(make_page_cfg, smiling_door_frames, tmp_path):
    """The token file was read once: after rotating it and a reload, the old token still
    worked and the new one did not."""
    from happyhouse.daemon.runner import reopen_page
    from happyhouse.daemon.service import Service

    old_token, new_token = "old-token-old-token-1", "new-token-new-token-2"
    path = write_token(tmp_path, old_token)
    cfg = make_page_cfg(**{"web.token_file": str(path), "web.address": "127.0.0.1:0"})
    service = Service.from_config(cfg, pin_factory=MockFactory(),
                                  source=FakeSource(smiling_door_frames[1], loop=True))
    service.start()
    page = reopen_page(None, make_page_cfg(**{"web.enabled": False}), service)
    try:
        assert reopen_page(page, cfg, service) is page  # nothing changed: the same page
        write_token(tmp_path, new_token)
        new_page = reopen_page(page, cfg, service)
        assert new_page is not page and page.closed.is_set()
        port = new_page.httpd.server_address[1]

        def status_with(token):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/status.json", headers={"Authorization": f"Bearer {token}"})
            return conn.getresponse().status

        assert status_with(new_token) == 200 and status_with(old_token) == 401
        page = new_page
    finally:
        page.close()
        service.stop("test")
        service.close()


def test_headers_trickled_a_byte_at_a_time_are_hung_up_on(start_door, monkeypatch):
    """A per-read timeout alone let a client sending one byte every few seconds hold its
    connection slot for ever (60 such clients locked everyone out)."""
    import happyhouse.daemon.web.server as server

    monkeypatch.setattr(server, "REQUEST_TIMEOUT", 1.0)
    door, client = start_door("others")
    slow = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    started = time.monotonic()
    hung_up = None
    for byte in b"GET /api/status.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40:
        try:
            slow.sendall(bytes([byte]))
        except OSError:
            hung_up = time.monotonic() - started
            break
        time.sleep(0.2)  # each byte well inside the 10 s per-read timeout
        slow.settimeout(0.01)
        try:
            if slow.recv(100) == b"":
                hung_up = time.monotonic() - started
                break
        except socket.timeout:
            pass
        except OSError:
            hung_up = time.monotonic() - started
            break
    slow.close()
    assert hung_up is not None and hung_up < 3.0, hung_up
    assert client.request("GET", "/api/status.json")[0] == 200


def test_one_address_cannot_take_every_connection_slot(start_door):
    door, client = start_door("others", **{"web.max_streams": 4})  # 36 slots, 18 per address
    idle = [socket.create_connection(("127.0.0.1", client.port), timeout=5) for _ in range(18)]
    try:
        wait_for(lambda: len(door.page.httpd.connections) == 18)
        extra = socket.create_connection(("127.0.0.1", client.port), timeout=5)
        assert extra.recv(100).startswith(b"HTTP/1.1 503")
        extra.close()
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: client.request("GET", "/api/status.json")[0] == 200)


def test_a_page_bound_to_another_loopback_address_opens_there(start_door):
    """Bound to 127.0.0.2 it refused every request, with "open this page as
    http://127.0.0.1:PORT/" (where nothing listened, and PORT literally)."""
    door, _ = start_door("others", **{"web.address": "127.0.0.2:0"})
    port = door.page.httpd.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.2", port, timeout=5)
    conn.request("GET", "/api/status.json")  # http.client sends Host: 127.0.0.2:port
    assert conn.getresponse().status == 200
    conn = http.client.HTTPConnection("127.0.0.2", port, timeout=5)
    conn.request("GET", "/api/status.json", headers={"Host": "evil.example"})
    resp = conn.getresponse()
    assert resp.status == 403
    assert json.loads(resp.read())["error"] == f"open this page as http://127.0.0.2:{port}/"


def test_methods_it_does_not_answer_get_its_own_json_refusal(start_door):
    """They got the standard library's HTML 501, without the page's security headers."""
    door, client = start_door("others")
    for method in ("PUT", "OPTIONS", "DELETE", "HEAD"):
        status, headers, data = client.request(method, "/api/status.json")
        assert status == 405 and headers["Allow"] == "GET, POST", method
        assert headers["Cache-Control"] == "no-store" and headers["X-Frame-Options"] == "DENY"
        if method != "HEAD":
            assert json.loads(data) == {"error": "this page answers GET and POST only"}


def test_deeply_nested_json_is_a_bad_request(start_door):
    """2000 nested brackets raised RecursionError: no reply, the connection dropped."""
    door, client = start_door("others")
    csrf = {"X-CSRF-Token": client.csrf()}
    status, _, data = client.request("POST", "/api/collect", body=b"[" * 2000 + b"]" * 2000,
                                     headers=csrf)
    assert status == 400 and json.loads(data) == {"error": "the body is not JSON"}

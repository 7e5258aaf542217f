"""The door's page over HTTP: what it serves, who may see it, what it refuses.

A real door service runs in a thread over a fake camera playing real GENKI faces
(the shipped model and face gate) with a mock latch pin; requests go over real
sockets. The pin's state history is the proof that no request opened the door.
"""

import json
import os
import socket
import time

import pytest

from happyhouse.daemon.errors import ConfigError

ROUTES = ["/", "/index.html", "/static/page.js", "/static/page.css", "/login", "/logout",
          "/api/status.json", "/api/decisions.json", "/api/decisions/1/snapshot.jpg",
          "/live.jpg", "/api/frames.json", "/api/frames/unsorted/x.png",
          "/api/frames/unsorted/x.png/label", "/api/collect", "/unlock", "/api/unlock",
          "/latch", "/open", "/api/latch", "/../../etc/passwd"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]

#: the 12-byte IEND chunk that ends every whole PNG (a listing checks for it)
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def wait_for(predicate, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def never_unlocked(door):
    return [s.state for s in door.pin.states if s.state]


# -- what the page serves ------------------------------------------------------
def test_status_json_has_the_checks_facts(start_door):
    door, client = start_door("others")
    wait_for(lambda: client.get_json("/api/status.json")["fps"] > 5)
    facts = client.get_json("/api/status.json")
    for key in ("state", "fps", "frame_age_s", "model_sha256", "threshold", "uptime_s", "unlocks",
                "last_error", "status", "votes", "camera"):
        assert key in facts
    assert facts["model_sha256"] == door.service.parts.pipeline.model_sha256
    assert facts["threshold"] == pytest.approx(door.service.parts.pipeline.threshold)
    assert facts["unlocks"] == 0 and facts["fps"] > 5 and 0 <= facts["frame_age_s"] < 1
    assert facts["status"].startswith("armed;")  # systemd's STATUS line, word for word


def test_live_view_jpeg_and_mjpeg_stream(start_door):
    door, client = start_door("others")
    status, headers, data = client.request("GET", "/live.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and data[:2] == b"\xff\xd8"
    sock = socket.create_connection(("127.0.0.1", client.port), timeout=10)
    sock.sendall(f"GET /live.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n\r\n".encode())
    got = b""
    end = time.monotonic() + 10
    while got.count(b"\xff\xd8") < 3 and time.monotonic() < end:
        got += sock.recv(65536)
    sock.close()
    assert b"multipart/x-mixed-replace" in got and got.count(b"--happyhouseframe") >= 3


def test_decisions_list_sightings_and_openings_with_snapshots(start_door):
    door, client = start_door("smiles", **{"service.snapshot_on_unlock": True})
    entries = wait_for(lambda: [e for e in client.get_json("/api/decisions.json")["decisions"]
                                if e["verdict"] == "unlocked"])
    opening = entries[0]
    assert opening["reason"] == "smile" and len(opening["scores"]) >= 3
    assert opening["snapshot"] == f"/api/decisions/{opening['id']}/snapshot.jpg"
    status, headers, data = client.request("GET", opening["snapshot"])
    assert status == 200 and data[:2] == b"\xff\xd8"
    assert client.request("GET", "/api/decisions/999999/snapshot.jpg")[0] == 404


# -- it can never open the door ------------------------------------------------
def test_no_route_with_any_method_moves_the_latch(start_door, token_path, token):
    door, client = start_door("others", **{"web.token_file": str(token_path)})
    wait_for(lambda: door.service.frames > 5)
    auth = {"Authorization": f"Bearer {token}"}
    for path in ROUTES:
        for method in METHODS:
            for headers in ({}, auth):
                for body in (None, b'{"action": "happy", "count": 1}'):
                    status, _, _ = client.request(method, path, body=body, headers=headers)
                    assert status < 500 or status in (501, 503), (method, path, status)
    assert door.service.door.unlocks == 0
    assert never_unlocked(door) == []  # not one state change to driven in the pin's history
    assert door.error is None


# -- who may see it --------------------------------------------------------------
def test_off_host_address_needs_a_token(make_page_cfg):
    with pytest.raises(ConfigError, match="token_file"):
        make_page_cfg(**{"web.address": "0.0.0.0:8321"})
    make_page_cfg(**{"web.address": "0.0.0.0:8321", "web.token_file": "/somewhere"})  # valid


@pytest.mark.parametrize("problem", ["missing", "mode", "short", "symlink", "folder", "spaces"])
def test_a_bad_token_file_refuses_to_start(tmp_path, make_page_cfg, token_path, problem):
    from happyhouse.daemon.web.auth import load_token

    path = tmp_path / "bad-token"
    if problem == "missing":
        pass
    elif problem == "mode":
        path.write_text("x" * 32)
        os.chmod(path, 0o644)
    elif problem == "short":
        path.write_text("short")
        os.chmod(path, 0o600)
    elif problem == "symlink":
        path.symlink_to(token_path)
    elif problem == "folder":
        path.mkdir()
    elif problem == "spaces":
        path.write_text("a token with spaces in it")
        os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="token_file"):
        load_token(str(path))


def test_the_daemon_refuses_to_start_the_page_without_a_usable_token(tmp_path, make_page_cfg):
    from happyhouse.daemon.web.server import DoorPage

    path = tmp_path / "open-token"
    path.write_text("y" * 32)
    os.chmod(path, 0o644)
    cfg = make_page_cfg(**{"web.address": "0.0.0.0:0", "web.token_file": str(path)})
    with pytest.raises(ConfigError, match="readable by others"):
        DoorPage(cfg, service=None)


def test_with_a_token_nothing_with_a_face_is_served_without_it(start_door, token_path, token):
    door, client = start_door("smiles", **{"web.token_file": str(token_path),
                                           "service.snapshot_on_unlock": True})
    for path in ("/api/status.json", "/api/decisions.json", "/live.jpg", "/live.mjpg",
                 "/api/frames.json", "/api/frames/unsorted/a.png", "/api/decisions/1/snapshot.jpg"):
        assert client.request("GET", path)[0] == 401, path
    status, _, html = client.request("GET", "/")
    assert status == 200 and b'action="/login"' in html and b"csrf-token" not in html
    assert client.request("GET", "/static/page.css")[0] == 200  # no faces in it
    for bad in ("wrong", token + "x", token[:-1], ""):
        assert client.request("GET", "/api/status.json",
                              headers={"Authorization": f"Bearer {bad}"})[0] in (401, 429)
    assert client.request("GET", "/api/status.json",
                          headers={"Authorization": f"Bearer {token}"})[0] == 200


def test_login_sets_a_strict_session_cookie_and_wrong_tokens_are_throttled(start_door, token_path, token):
    door, client = start_door("others", **{"web.token_file": str(token_path)})
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, _ = client.request("POST", "/login", body=f"token={token}".encode(), headers=form)
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert client.request("GET", "/api/status.json", headers=session)[0] == 200
    assert client.request("GET", "/api/status.json", headers={"Cookie": "happyhouse_session=forged"})[0] == 401
    codes = [client.request("POST", "/login", body=b"token=guess-guess-guess-1", headers=form)
             for _ in range(8)]
    assert [c[1].get("Location") for c in codes[:5]] == ["/?wrong=1"] * 5
    assert all(c[0] == 429 for c in codes[5:])
    # logging out ends the session
    client.request("POST", "/logout", headers=session)
    assert client.request("GET", "/api/status.json", headers=session)[0] == 401


def test_loopback_page_rejects_other_host_names(start_door):
    door, client = start_door("others")
    for host in ("evil.example", "evil.example:80", "192.168.1.5", ""):
        assert client.request("GET", "/api/status.json", headers={"Host": host})[0] == 403
    assert client.request("GET", "/api/status.json",
                          headers={"Host": f"localhost:{client.port}"})[0] == 200


# -- labelling: CSRF and the file system ---------------------------------------------
def put_frame(root, folder, name, label=None):
    target = root / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / name).write_bytes(b"\x89PNG\r\n\x1a\nfake" + IEND)
    (target / name.replace(".png", ".json")).write_text(json.dumps({"label": label or folder}))
    return target / name


def test_labelling_moves_frame_and_sidecar_with_csrf(start_door, tmp_path):
    door, client = start_door("others")
    root = tmp_path / "collect"
    put_frame(root, "unsorted", "20261127T100000-000-1.png")
    put_frame(root, "unsorted", "20261127T100001-000-2.png")
    path = "/api/frames/unsorted/20261127T100000-000-1.png/label"
    assert client.request("POST", path, body={"action": "happy"})[0] == 403  # no CSRF token
    assert client.request("POST", path, body={"action": "happy"},
                          headers={"X-CSRF-Token": "guess"})[0] == 403
    csrf = {"X-CSRF-Token": client.csrf()}
    assert client.request("POST", path, body={"action": "happy"},
                          headers={**csrf, "Origin": "http://evil.example"})[0] == 403
    status, _, data = client.request("POST", path, body={"action": "happy"}, headers=csrf)
    assert status == 200 and json.loads(data)["folder"] == "happy"
    assert (root / "happy/20261127T100000-000-1.png").is_file()
    assert json.loads((root / "happy/20261127T100000-000-1.json").read_text())["label"] == "happy"
    assert not (root / "unsorted/20261127T100000-000-1.png").exists()
    assert not (root / "unsorted/20261127T100000-000-1.json").exists()
    status, _, _ = client.request("POST", "/api/frames/unsorted/20261127T100001-000-2.png/label",
                                  body={"action": "discard"}, headers=csrf)
    assert status == 200 and list((root / "unsorted").iterdir()) == []
    # relabel; a bad action; a frame that is gone
    assert client.request("POST", "/api/frames/happy/20261127T100000-000-1.png/label",
                          body={"action": "not_happy"}, headers=csrf)[0] == 200
    assert client.request("POST", "/api/frames/not_happy/20261127T100000-000-1.png/label",
                          body={"action": "delete-everything"}, headers=csrf)[0] == 409
    assert client.request("POST", path, body={"action": "happy"}, headers=csrf)[0] == 409
    listing = client.get_json("/api/frames.json")
    assert listing["counts"] == {"unsorted": 0, "happy": 0, "not_happy": 1}


@pytest.mark.parametrize("path", [
    "/api/frames/unsorted/..%2F..%2Fweb-token", "/api/frames/unsorted/../../web-token",
    "/api/frames/../web-token", "/api/frames/unsorted/%2e%2e", "/api/frames/etc/passwd.png",
    "/api/frames/unsorted/.hidden.png", "/api/frames/unsorted/a%00b.png",
    "/api/frames/unsorted/a\\b.png", "/api/frames/unsorted/outside.png",
    "/api/frames/happy/inside.png",
])
def test_no_request_reaches_outside_the_collect_folder(start_door, tmp_path, path):
    door, client = start_door("others")
    root = tmp_path / "collect"
    secret = tmp_path / "web-token"
    secret.write_text("SECRET-TOKEN-VALUE")
    (root / "unsorted").mkdir(parents=True, exist_ok=True)
    (root / "unsorted" / "outside.png").symlink_to(secret)  # a planted link
    (root / "happy").rmdir()
    (root / "happy").symlink_to(tmp_path)  # the folder itself replaced by a link
    (tmp_path / "inside.png").write_text("SECRET-TOKEN-VALUE")
    status, _, data = client.request("GET", path)
    assert status in (400, 404) and b"SECRET" not in data
    csrf = {"X-CSRF-Token": client.csrf()}
    status, _, data = client.request("POST", path + "/label", body={"action": "discard"}, headers=csrf)
    assert status in (400, 404, 409) and b"SECRET" not in data
    assert secret.read_text() == "SECRET-TOKEN-VALUE" and (tmp_path / "inside.png").exists()


# -- bounds ----------------------------------------------------------------------
def test_oversized_and_chunked_requests_are_refused(start_door):
    door, client = start_door("others")
    csrf = {"X-CSRF-Token": client.csrf()}
    status, _, _ = client.request("POST", "/api/collect", body=b"x" * 10_000, headers=csrf)
    assert status == 413
    sock = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    sock.sendall(f"POST /api/collect HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
                 f"Content-Length: 99999999999\r\n\r\n".encode())
    assert b" 413 " in sock.recv(4096).split(b"\r\n")[0] + b" "
    sock.close()
    # a length of a digit that is not ASCII ('²', sent as latin-1 like any header byte)
    sock = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    sock.sendall(f"POST /api/collect HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
                 f"X-CSRF-Token: {csrf['X-CSRF-Token']}\r\n".encode()
                 + b"Content-Length: \xb2\r\n\r\n")
    assert b" 400 " in sock.recv(4096).split(b"\r\n")[0] + b" "
    sock.close()
    sock = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    sock.sendall(f"POST /api/collect HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n"
                 f"Transfer-Encoding: chunked\r\n\r\n".encode())
    assert b"411" in sock.recv(4096).split(b"\r\n")[0]
    sock.close()
    status, _, _ = client.request("GET", "/api/status.json", headers={"X-Big": "y" * 70_000})
    assert status in (400, 431)


def test_slow_and_silent_clients_are_dropped_and_the_door_keeps_deciding(start_door, monkeypatch):
    import happyhouse.daemon.web.server as server

    monkeypatch.setattr(server._Handler, "timeout", 1.0)
    door, client = start_door("others")
    slow = socket.create_connection(("127.0.0.1", client.port), timeout=5)
    slow.sendall(b"GET /api/stat")  # then nothing: a slowloris
    assert client.request("GET", "/api/status.json")[0] == 200  # others are still served
    time.sleep(1.5)
    assert slow.recv(100) == b""  # the server hung up on it
    slow.close()


def test_many_streams_and_a_stalled_reader_do_not_stop_the_door(start_door):
    door, client = start_door("others", **{"web.max_streams": 20})
    wait_for(lambda: door.service.frames > 5)
    streams = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", client.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /live.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{client.port}\r\n\r\n".encode())
        streams.append(s)
    wait_for(lambda: door.page.live.viewers == 20)
    assert client.request("GET", "/live.mjpg")[0] == 503  # the 21st: every slot taken
    before = door.service.frames
    time.sleep(2.0)  # none of the 20 reads: their sockets fill up
    assert door.service.frames - before >= 20  # 15 fps camera: the loop went on
    assert client.get_json("/api/status.json")["state"] == "armed"
    for s in streams:
        s.close()
    wait_for(lambda: door.page.live.viewers == 0, timeout=15)
    assert never_unlocked(door) == []


def test_rate_limit_per_address():
    from happyhouse.daemon.web.server import RateLimit

    now = [0.0]
    limit = RateLimit(rate=10, burst=5, clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(6)] == [True] * 5 + [False]
    assert limit.allow("b")  # another address has its own budget
    now[0] += 0.2
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]


def test_collect_from_the_page_writes_unsorted_frames(start_door, tmp_path):
    door, client = start_door("others")
    csrf = {"X-CSRF-Token": client.csrf()}
    assert client.request("POST", "/api/collect", body={"count": 0}, headers=csrf)[0] == 409
    assert client.request("POST", "/api/collect", body={"count": "3"}, headers=csrf)[0] == 409
    status, _, data = client.request("POST", "/api/collect", body={"count": 3}, headers=csrf)
    assert status == 200 and json.loads(data)["active"]
    wait_for(lambda: not client.get_json("/api/status.json")["collect"]["active"], timeout=20)
    unsorted = tmp_path / "collect" / "unsorted"
    frames = sorted(unsorted.glob("*.png"))
    assert len(frames) == 3
    side = json.loads(frames[0].with_suffix(".json").read_text())
    assert side["label"] == "unsorted" and len(side["face"]) == 4
    assert side["model_sha256"] == door.service.parts.pipeline.model_sha256
    listing = client.get_json("/api/frames.json")
    assert listing["counts"]["unsorted"] == 3
    name = listing["frames"][0]["name"]
    status, headers, png = client.request("GET", f"/api/frames/unsorted/{name}")
    assert status == 200 and png[:4] == b"\x89PNG"

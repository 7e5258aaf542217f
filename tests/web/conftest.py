"""Fixtures for the door's page: a real door service with its page on a free port,
a fake camera playing real faces and a mock latch pin (``BackgroundDoor``)."""

import http.client
import json
import os
from pathlib import Path

import pytest

from happyhouse.daemon.config import load_config


def page_cfg(tmp_path: Path, **values):
    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state"),
            "web.enabled": True, "web.address": "127.0.0.1:0",
            "web.collect_dir": str(tmp_path / "collect")}
    base.update(values)
    return load_config(None, base)


def token_file(tmp_path: Path, token: str = "correct-horse-battery-staple-42") -> Path:
    path = tmp_path / "web-token"
    path.write_text(token + "\n")
    os.chmod(path, 0o600)
    return path


class Client:
    """Plain HTTP requests to the page (http.client: every header and byte as sent)."""

    def __init__(self, door) -> None:
        self.door = door
        self.port = door.page.httpd.server_address[1]

    def request(self, method: str, path: str, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = {"Host": f"127.0.0.1:{self.port}"}
            hdrs.update(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read() if method != "HEAD" else b""
            return resp.status, dict(resp.getheaders()), data
        finally:
            conn.close()

    def get_json(self, path: str, headers=None):
        status, _, data = self.request("GET", path, headers=headers)
        assert status == 200, (path, status, data)
        return json.loads(data)

    def csrf(self, headers=None) -> str:
        status, _, html = self.request("GET", "/", headers=headers)
        assert status == 200
        marker = b'name="csrf-token" content="'
        start = html.index(marker) + len(marker)
        return html[start:html.index(b'"', start)].decode()


@pytest.fixture
def start_door(tmp_path, smiling_door_frames):
    """start_door(frames="smiles"|"others", **cfg values) -> (door, client); stopped after."""
    from happyhouse.daemon.web.demo import BackgroundDoor

    started = []

    def start(frames="others", **values):
        smiles, others = smiling_door_frames
        cfg = page_cfg(tmp_path, **values)
        door = BackgroundDoor(cfg, smiles if frames == "smiles" else others, fps=15).start()
        started.append(door)
        return door, Client(door)

    yield start
    for door in started:
        door.stop()
        assert door.error is None, door.error


@pytest.fixture
def make_page_cfg(tmp_path):
    return lambda **values: page_cfg(tmp_path, **values)


@pytest.fixture
def token_path(tmp_path):
    """A valid token file (mode 600, this user): its path; the token is ``TOKEN``."""
    return token_file(tmp_path, TOKEN)


TOKEN = "correct-horse-battery-staple-42"


@pytest.fixture
def token():
    return TOKEN

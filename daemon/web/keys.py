"""The ``[web]`` config keys and their checks (no server imports: config loads this).

Secure by default: the page is off; when on, it binds to the loopback address
unless told otherwise, and any other address needs a token file (checked when
the page starts: :func:`.auth.load_token`).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping, Tuple

from ..errors import ConfigError
from ..keys import Key

DEFAULT_ADDRESS = "127.0.0.1:8321"

KEYS: Tuple[Key, ...] = (
    Key("web", "enabled", "bool", False,
        "serve the door's page (live view, status, decisions, labelling); off by default"),
    Key("web", "address", "str", DEFAULT_ADDRESS,
        "ADDRESS:PORT the page listens on; any address but 127.0.0.1/::1 needs token_file"),
    Key("web", "token_file", "path", "",
        "file holding the page's access token (16+ characters), readable only by the service "
        "user; needed off-host (empty = none, loopback only)"),
    Key("web", "collect_dir", "path", "",
        "folder of frames to label for happyhouse-adapt (empty = <state_dir>/collect)"),
    Key("web", "stream_fps", "float", 4.0, "live view frames per second", 0.5, 15),
    Key("web", "stream_width", "int", 480, "live view width in pixels (downscaled)", 160, 1920),
    Key("web", "max_streams", "int", 24, "live views open at once; more are refused", 1, 100),
)


def parse_address(text: str, origin: str = "config") -> Tuple[str, int]:
    """``'127.0.0.1:8321'``, ``'0.0.0.0:80'``, ``'[::1]:8321'`` -> (host, port)."""
    raw = str(text).strip()
    host, sep, port_text = raw.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    why = None
    if not sep or not host:
        why = "expected ADDRESS:PORT, e.g. 127.0.0.1:8321 or 0.0.0.0:8321"
    # ASCII digits only: str.isdigit() passes '²', which int() refuses (a traceback once)
    elif not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        why = f"the port {port_text!r} is not 0 to 65535 (0: any free port, named in the log)"
    elif host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            why = f"{host!r} is not an IP address (give the address to listen on, not a name)"
    if why is not None:
        raise ConfigError(f"{origin}: [web] address = {raw!r} is invalid: {why}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def check_config(values: Mapping[str, Any], origin: str) -> None:
    host, _ = parse_address(values["web.address"], origin)
    if values["web.enabled"] and not is_loopback(host) and not str(values["web.token_file"]).strip():
        raise ConfigError(
            f"{origin}: [web] address = {values['web.address']} is reachable from other "
            f"machines and the page shows faces: set [web] token_file to a file holding a "
            f"token (e.g. `head -c 24 /dev/urandom | base64 > /etc/happyhouse/web-token; "
            f"chown happyhouse /etc/happyhouse/web-token; chmod 600 /etc/happyhouse/web-token`), "
            f"or listen on 127.0.0.1")

"""Text that leaves the process: credentials masked, untrusted characters escaped.

Every log line (both handlers in :mod:`.journal`), the camera description
(``--once``, ``--check``, sd_notify status) and ``--print-config`` go through
:func:`clean`, so a camera password never reaches the journal and a file name
with a newline cannot forge a log line (issue 16 items 12 and 14).
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@host: userinfo runs to the LAST "@" before the host, because a
# password may itself hold "@" (rtsp://admin:S3cret@PW99@host); it stops at white space
# and quotes so two URLs on one line stay apart
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s'\"<>]*)@(?P<host>[^\s'\"<>@/?#]*)")
# key=value credentials: URL query parameters (?password=..&token=..) and GStreamer
# element properties (rtspsrc user-pw=...), quoted or not
_KEY_CREDENTIALS = re.compile(
    r"(?i)(?P<key>\b(?:user-?pw|password|passwd|pwd|pass|passphrase|secret|token|"
    r"access[_-]?token|api[_-]?key|apikey|auth|authorization|sig|signature|key)\s*=\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|[^&;\s,'\"]+)")
# C0 and C1 controls and the Unicode line/paragraph separators: anything that could end
# a log line or move the cursor
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _userinfo(match: "re.Match[str]") -> str:
    user, colon, _password = match.group("userinfo").partition(":")
    # user:password keeps the user (useful to the technician); a bare userinfo may be a
    # token (https://TOKEN@host), so all of it goes
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{match.group('scheme')}{shown}@{match.group('host')}"


def mask_secrets(text: str) -> str:
    """``text`` with every credential form masked (URL user info, key=value secrets)."""
    text = _URL_CREDENTIALS.sub(_userinfo, text)
    return _KEY_CREDENTIALS.sub(lambda m: f"{m.group('key')}{MASK}", text)


def escape_controls(text: str) -> str:
    """Control characters as visible escapes (``\\n``, ``\\x1b``): one line stays one line."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"
                                             if ord(m.group()) < 0x100
                                             else f"\\u{ord(m.group()):04x}"), text)


def clean(text: object) -> str:
    """What may be written to a log, the journal or a report: masked and one line."""
    return escape_controls(mask_secrets(str(text)))


def decimal(value: float) -> str:
    """A score or threshold to 3 places, or to as many as it takes not to read 0.000 or
    1.000 when it is neither ("score 0.998 < threshold 1.000" for a threshold of 0.9996)."""
    value = float(value) + 0.0  # -0.0 reads 0.000
    if value in (0.0, 1.0) or round(value, 3) not in (0.0, 1.0):
        return f"{value:.3f}"
    places = 4  # as many as it takes: 0.99999994 (a saturated float32 score) is not "1"
    while round(value, places) in (0.0, 1.0) and places < 9:
        places += 1
    return f"{value:.{places}f}"

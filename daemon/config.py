"""The daemon's one frozen, validated config.

Loaded once (INI file, then command-line overrides) into :class:`Config` and
passed explicitly; nothing else reads files or environment for settings.
Every key is declared once (the daemon's here, each face detector's in its own
module) and collected in :data:`KEYS` with its type, default, allowed
range and help: validation, ``--print-config`` and the commented example in
``deploy/happyhouse.conf`` all come from that table.
"""

from __future__ import annotations

import ast
import codecs
import configparser
import logging
import os
import re
import stat
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import detectors
from .errors import ConfigError, HappyHouseError
from .keys import Key
from .logtext import clean
from .web import keys as web_keys

DEFAULT_PATH = "/etc/happyhouse/happyhouse.conf"

# gpiozero pin names: GPIO17, BCM17, BOARD11, J8:11, WPI0, or a bare BCM number.
log = logging.getLogger(__name__)

_PIN_RE = re.compile(r"^(GPIO\d{1,2}|BCM\d{1,2}|BOARD\d{1,2}|J8:\d{1,2}|WPI\d{1,2}|\d{1,2})$",
                     re.I | re.ASCII)  # ASCII: \d also matches "١٧" and "１７", which gpiozero refuses
GPIO_FACTORIES = ("auto", "mock", "lgpio", "rpigpio", "pigpio", "native")
DETECTORS: Tuple[str, ...] = tuple(detectors.DETECTORS)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


KEYS: Tuple[Key, ...] = (
    Key("camera", "source", "str", "0",
        "camera index (0), /dev/videoN, video file, rtsp:// or http:// URL, GStreamer "
        "pipeline ending in appsink, an image file or a folder of images"),
    Key("camera", "width", "int", 640, "requested capture width in pixels", 64, 4096),
    Key("camera", "height", "int", 480, "requested capture height in pixels", 48, 4096),
    Key("camera", "fps", "float", 15.0, "requested capture rate (frames per second)", 1, 120),
    Key("camera", "settle_frames", "int", 5,
        "frames discarded after opening so exposure settles (--once, --check)", 0, 100),
    Key("camera", "stale_after", "float", 0.5,
        "a frame older than this many seconds is stale and never counts", 0.05, 10),
    Key("camera", "stall_timeout", "float", 3.0,
        "seconds without a new frame before the camera is declared lost and reopened", 0.5, 60),
    Key("camera", "reopen_backoff_max", "float", 30.0,
        "longest wait in seconds between attempts to reopen a lost camera", 1, 600),
    Key("model", "bundle", "path", "",
        "model bundle folder (model.tflite + model.json); empty = the shipped default"),
    Key("model", "threads", "int", 1, "TFLite interpreter threads", 1, 8),
    Key("model", "threshold", "optfloat", None,
        "score needed to count as happy; empty = the bundle's validated threshold", 0.0, 1.0),
    Key("face", "detector", "choice", "blazeface",
        "face detector: blazeface (MediaPipe's short-range model, shipped), haar (OpenCV "
        "cascades, the fallback) or yunet (needs yunet_model)", choices=DETECTORS),
    Key("face", "min_face", "int", 48, "smallest face side in full-frame pixels", 8, 2000),
    # each detector declares the [face] keys it reads (daemon/detectors/)
    *detectors.KEYS,
    Key("decision", "votes_needed", "int", 3, "happy frames needed among the last `window`", 1, 50),
    Key("decision", "window", "int", 5, "fresh face frames the vote looks back over", 1, 50),
    Key("decision", "max_gap", "float", 0.6,
        "seconds allowed between consecutive fresh face frames; a longer gap resets the vote",
        0.05, 10),
    Key("decision", "unlock_seconds", "float", 5.0, "how long the latch stays open", 0.5, 60),
    Key("decision", "max_unlock_seconds", "float", 15.0,
        "hard cap on one opening, enforced by a timer independent of the main loop", 0.5, 120),
    Key("decision", "cooldown_seconds", "float", 3.0,
        "after relocking, seconds before a new vote may unlock", 0, 600),
    Key("latch", "pin", "pin", "GPIO17", "GPIO pin driving the latch relay (gpiozero name)"),
    Key("latch", "active_high", "bool", True,
        "true: pin high = unlocked (active-high relay driver with pull-down)"),
    Key("latch", "gpio", "choice", "auto",
        "gpiozero pin factory: auto (GPIOZERO_PIN_FACTORY or gpiozero's default), mock, "
        "lgpio, rpigpio, pigpio, native", choices=GPIO_FACTORIES),
    Key("latch", "door_contact_pin", "optpin", None,
        "optional door contact input; relocks as soon as the door closes"),
    Key("latch", "door_contact_pull_up", "bool", True,
        "door contact wired to ground (closed door = pin pulled low)"),
    Key("latch", "exit_button_pin", "optpin", None,
        "optional request-to-exit button input; opens the door from inside"),
    Key("latch", "exit_button_pull_up", "bool", True, "exit button wired to ground"),
    Key("service", "state_dir", "path", "/var/lib/happyhouse",
        "where unlock snapshots are written (systemd StateDirectory)"),
    Key("service", "snapshot_on_unlock", "bool", False, "save an annotated JPEG for every unlock"),
    Key("service", "snapshot_max_count", "int", 200, "keep at most this many snapshots", 1, 100000),
    Key("service", "snapshot_max_mb", "float", 50.0, "keep at most this many MB of snapshots",
        0.1, 100000),
    Key("service", "log_level", "choice", "INFO", "DEBUG, INFO, WARNING or ERROR",
        choices=LOG_LEVELS),
    # the door's page declares its own keys (daemon/web/keys.py)
    *web_keys.KEYS,
)

KEY_BY_NAME: Mapping[str, Key] = MappingProxyType({k.dotted: k for k in KEYS})
SECTIONS: Tuple[str, ...] = tuple(dict.fromkeys(k.section for k in KEYS))


#: a whole number as a config file writes one
_WHOLE_RE = re.compile(r"[+-]?[0-9]+")
_DECIMAL_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


#: the 40-pin header's physical pins (BOARD, J8) and wiringPi numbers -> the BCM GPIO they are
_BOARD_TO_GPIO = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24,
                  19: 10, 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6,
                  32: 12, 33: 13, 35: 19, 36: 16, 37: 26, 38: 20, 40: 21}
_WPI_TO_GPIO = {0: 17, 1: 18, 2: 27, 3: 22, 4: 23, 5: 24, 6: 25, 7: 4, 8: 2, 9: 3, 10: 8, 11: 7,
                12: 10, 13: 9, 14: 11, 15: 14, 16: 15, 21: 5, 22: 6, 23: 13, 24: 19, 25: 26,
                26: 12, 27: 16, 28: 20, 29: 21, 30: 0, 31: 1}


def number(text: str) -> float:
    """A command-line number in plain digits (argparse's ``type``; float() took "0.8_5")."""
    text = str(text).strip()
    # nan and inf pass: each flag's own range check names them in its own words
    if not (_DECIMAL_RE.fullmatch(text) or text.lower().lstrip("+-") in ("nan", "inf", "infinity")):
        raise ValueError(f"not a number in plain digits: {text!r}")
    return float(text) + 0.0


def pin_identity(name: str) -> str:
    """The GPIO a pin name means on a Pi's 40-pin header ("BOARD11" -> "GPIO17"); a name
    with no GPIO (a power or ground pin) is itself."""
    text = str(name).upper()
    index = int(re.sub(r"^(GPIO|BCM|BOARD|J8:|WPI)", "", text) or -1)
    if text.startswith(("BOARD", "J8:")):
        gpio = _BOARD_TO_GPIO.get(index)
    elif text.startswith("WPI"):
        gpio = _WPI_TO_GPIO.get(index)
    else:
        gpio = index
    return f"GPIO{gpio}" if gpio is not None else text


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse(key: Key, raw: Any) -> Any:
    """Convert ``raw`` (file text, flag text or a Python value) for ``key``."""
    text = raw.strip() if isinstance(raw, str) else raw
    if key.kind in ("optfloat", "optpin") and text in (None, ""):
        return None
    if key.kind == "bool":
        return text if isinstance(text, bool) else _parse_bool(str(text))
    if key.kind == "int":
        if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
            raise ValueError("expected a whole number")
        if isinstance(text, str) and not _WHOLE_RE.fullmatch(text):
            # int() also takes "1_0" (10) and other scripts' digits ("３"): not what a
            # technician typing a frame count means, nor what any other tool reads back
            raise ValueError("expected a whole number in plain digits")
        return int(text)
    if key.kind in ("float", "optfloat"):
        if isinstance(text, str) and not _DECIMAL_RE.fullmatch(text):
            # float() also takes "0_5" (5.0: an unlock of 5 s for 0.5), other scripts'
            # digits ("５"), "nan" and "inf"; whole-number keys already refused them
            raise ValueError("expected a number in plain digits, e.g. 0.5")
        value = float(text)
        if value != value:
            raise ValueError("NaN is not allowed")
        return value + 0.0  # -0 reads 0.0, not "-0.0"
    if key.kind == "choice":
        value = str(text)
        match = [c for c in key.choices if c.lower() == value.lower()]
        if not match:
            raise ValueError(f"expected one of {', '.join(key.choices)}")
        return match[0]
    if key.kind in ("pin", "optpin"):
        value = str(text)
        if not _PIN_RE.match(value):
            raise ValueError("expected a gpiozero pin name such as GPIO17, BCM17 or BOARD11")
        return value.upper()
    if key.kind == "path":
        # no shell reads a config file: "~" is expanded here, for every path key alike, as
        # the camera source always was ("bundle = ~/my_bundle" once said "does not exist")
        return os.path.expanduser(str(text)) if text else ""
    return str(text)


def _validate(key: Key, raw: Any, origin: str) -> Any:
    try:
        value = _parse(key, raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: [{key.section}] {key.name} = {raw!r} is invalid: {exc}") from None
    if value is not None and key.low is not None and not key.low <= value <= key.high:
        raise ConfigError(
            f"{origin}: [{key.section}] {key.name} = {raw!r} is out of range: "
            f"allowed {key.low:g} to {key.high:g}")
    return value


@dataclass(frozen=True)
class Config:
    """Effective settings: ``cfg.get('decision.window')`` or ``cfg.decision_window``."""

    values: Mapping[str, Any]
    source_path: Optional[str] = None

    def get(self, dotted: str) -> Any:
        if dotted not in self.values:
            raise ConfigError(f"unknown config key {dotted!r}")
        return self.values[dotted]

    def __getattr__(self, attr: str) -> Any:
        # decision_window -> values["decision.window"]; only for declared keys
        if "_" in attr:
            section, _, name = attr.partition("_")
            dotted = f"{section}.{name}"
            if dotted in KEY_BY_NAME:
                return self.values[dotted]
        raise AttributeError(attr)

    def replace(self, **overrides: Any) -> "Config":
        """A new validated Config with ``section_name=value`` overrides."""
        dotted = {k.replace("_", ".", 1): v for k, v in overrides.items()}
        return build_config({**self.values, **dotted}, origin="override", path=self.source_path)

    def to_ini(self) -> str:
        """The effective config as INI text (``--print-config``)."""
        lines = []
        if self.source_path:
            lines.append(f"# effective config; file: {self.source_path}")
        for section in SECTIONS:
            lines.extend(["", f"[{section}]"])
            for key in (k for k in KEYS if k.section == section):
                lines.append(f"{key.name} = {_format(self.values[key.dotted])}")
        # a camera URL's password is not for the screen or a pasted support request
        return "\n".join(clean(line) for line in lines).lstrip("\n") + "\n"


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_config(values: Mapping[str, Any], origin: str = "config",
                 path: Optional[str] = None) -> Config:
    """Validate a mapping of dotted keys into a Config (unknown keys are errors)."""
    unknown = sorted(set(values) - set(KEY_BY_NAME))
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)}; "
                          f"known keys: {', '.join(sorted(KEY_BY_NAME))}")
    out: Dict[str, Any] = {}
    for key in KEYS:
        raw = values.get(key.dotted, key.default)
        out[key.dotted] = _validate(key, raw, origin)
    _check_relations(out, origin)
    if origin not in ("command line", "defaults"):  # said once, for what the file sets
        _warn_unused_detector_keys(values, out["face.detector"], origin)
    return Config(MappingProxyType(out), path)


def _warn_unused_detector_keys(values: Mapping[str, Any], detector: str, origin: str) -> None:
    """A [face] key only another detector reads ("cascade = ..." under the default
    BlazeFace) was silently ignored: the technician thought the door used it."""
    used = {k.dotted for k in detectors.DETECTORS[detector].keys}
    for cls in detectors.DETECTORS.values():
        for key in cls.keys:
            if (key.dotted not in used and key.dotted in values
                    and str(values[key.dotted]).strip() != str(key.default)):
                readers = [n for n, c in detectors.DETECTORS.items() if key in c.keys]
                log.warning("%s: [face] %s is set, but [face] detector = %s does not read it "
                            "(it is read only with %s)", origin, key.name, detector, " or ".join(
                                f"detector = {n}" for n in readers))
                used.add(key.dotted)  # once, also for a key two detectors share


def _rate_is_fps(source: str) -> bool:
    """Do frames come at [camera] fps from ``source``: asked of a camera (an index, a
    /dev/ device) or the pace pictures are replayed at? A stream, a pipeline or a video
    file runs at its own rate, whatever fps says."""
    from .sources import classify_spec  # the one reading of a source (it may look at a file)

    try:
        return classify_spec(source) in ("camera", "v4l2", "images", "h5")
    except HappyHouseError:  # a source that does not exist: said where it is opened
        return False


def _check_relations(v: Mapping[str, Any], origin: str) -> None:
    for dotted in ("camera.source", "service.state_dir"):
        if not str(v[dotted]).strip():
            section, _, name = dotted.partition(".")
            raise ConfigError(f"{origin}: [{section}] {name} must not be empty "
                              f"(default {KEY_BY_NAME[dotted].default})")
    if v["decision.votes_needed"] > v["decision.window"]:
        raise ConfigError(f"{origin}: [decision] votes_needed ({v['decision.votes_needed']}) "
                          f"must not exceed window ({v['decision.window']})")
    if (v["decision.votes_needed"] > 1 and 1.0 / v["camera.fps"] > v["decision.max_gap"]
            and _rate_is_fps(str(v["camera.source"]))):
        raise ConfigError(f"{origin}: [camera] fps {v['camera.fps']:g} gives a frame every "
                          f"{1.0 / v['camera.fps']:.2f} s, more than [decision] max_gap "
                          f"({v['decision.max_gap']:g} s): every vote would reset and the door "
                          f"never open; raise fps or max_gap")
    if v["decision.unlock_seconds"] > v["decision.max_unlock_seconds"]:
        raise ConfigError(f"{origin}: [decision] unlock_seconds ({v['decision.unlock_seconds']}) "
                          f"must not exceed max_unlock_seconds ({v['decision.max_unlock_seconds']})")
    pins = [p for p in (v["latch.pin"], v["latch.door_contact_pin"], v["latch.exit_button_pin"]) if p]
    # by the pin each name means (GPIO17, BCM17, 17, BOARD11, J8:11, WPI0 are one pin): the
    # names compared as text let the service fail at start with GPIOPinInUse after --check
    # and the installer had said GO
    if len({pin_identity(p) for p in pins}) != len(pins):
        aliases = [f"{' and '.join(names)} are the same pin, {gpio}" for gpio in
                   sorted({pin_identity(p) for p in pins})
                   for names in [sorted({p for p in pins if pin_identity(p) == gpio})] if len(names) > 1]
        raise ConfigError(f"{origin}: [latch] pin, door_contact_pin and exit_button_pin "
                          f"must be different pins, got {', '.join(pins)}"
                          + (f" ({'; '.join(aliases)})" if aliases else ""))
    detectors.detector_class(v["face.detector"]).check_config(v, origin)
    web_keys.check_config(v, origin)


#: a config file is a few kilobytes; anything bigger is not one (a log, /dev/zero)
MAX_CONFIG_BYTES = 1 << 20


def read_config_text(path: str, errors: str = "strict") -> str:
    """The text of a config file, or a ConfigError that says what the path is instead.

    Only a regular file is read (a folder, a FIFO or a device would fail, block
    forever or never end), at most :data:`MAX_CONFIG_BYTES`. The text is UTF-8,
    with or without the byte-order mark Windows editors write, or UTF-16 with
    its byte-order mark; ``errors="replace"`` keeps undecodable bytes (a Latin-1
    comment) as U+FFFD instead of refusing the file. A file with NUL characters
    is not text (UTF-16 without a byte-order mark, a binary file).
    """
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (use --config PATH)") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"config file {path} is {_file_kind(mode)}, not a regular file")
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: "
                          f"not a config file")
    data = b"".join(chunks)
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding, errors)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} cannot be read: it is not UTF-8 text "
                          f"(byte {exc.start}); save it as UTF-8") from None
    if "\0" in text:
        raise ConfigError(f"config file {path} is not a text file (it holds NUL characters; "
                          f"UTF-16 without a byte-order mark?): save it as UTF-8")
    if not text.strip():
        # a file a power cut or a full card left empty read as "every default": an
        # active-low latch then drove its "locked" level high, and held the door open
        raise ConfigError(f"config file {path} is empty (cut short by a power cut or a full "
                          f"disk?): restore it (on a Pi the installer's template is "
                          f"/opt/happyhouse/share/happyhouse.conf.dist) and set [latch] pin and "
                          f"active_high as the latch is wired")
    return text


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a plain file"


#: configparser's section of defaults for every section, renamed out of reach: a
#: ``[DEFAULT]`` in a file is then one more unknown section. Left as configparser's, its
#: keys vanished (no [latch]: ``pin`` and ``active_high`` silently default) or leaked
#: into every section: an active-low latch read as active-high holds the door open.
_NO_DEFAULT_SECTION = "\0defaults"


def ini_parser() -> configparser.ConfigParser:
    """The one INI dialect of config files (``#`` and ``;`` comments, no interpolation,
    no ``[DEFAULT]`` section)."""
    return configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"),
                                     default_section=_NO_DEFAULT_SECTION)


def read_ini(path: str) -> Dict[str, str]:
    """Read an INI file into dotted raw values; unknown sections or keys are errors."""
    text = read_config_text(path)
    parser = ini_parser()
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"config file {path} is not valid INI: {ini_error_text(exc)}") from None
    raw: Dict[str, str] = {}
    for section in parser.sections():
        if section not in SECTIONS:
            hint = (" ([DEFAULT] is not read: put each key under its own section)"
                    if section.upper() == "DEFAULT" else "")
            raise ConfigError(f"{path}: unknown section [{section}]{hint}; "
                              f"known sections: {', '.join(SECTIONS)}")
        for name, value in parser.items(section):
            text = value.strip()
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
                # INI takes the quotes as part of the value: source = "/dev/video0" passed
                # every check and failed at start as a camera named with quotes
                raise ConfigError(f"{path}: [{section}] {name} = {text}: a config value takes "
                                  f"no quotes; write it without them")
            if "\n" in value:
                # INI reads an indented line as more of the value above it: "detector = haar"
                # indented under "cascade = ..." became part of the cascade's path, silently
                more = next((line for line in value.splitlines()[1:] if line.strip()),
                            value.splitlines()[-1])
                raise ConfigError(f"{path}: [{section}] {name}: the line {more.strip()!r} after it "
                                  f"is indented, so it is read as more of {name}'s value: a "
                                  f"value is one line: join the two, or remove the spaces if "
                                  f"it is a setting of its own")
            raw[f"{section}.{name}"] = value
    for dotted, value in raw.items():
        relative = relative_path_in(dotted, value)
        if relative:
            # each tool read it from its own working folder: --check run from one folder
            # said GO on pictures the service (run in another) could not find, and a
            # relative state_dir would move the lock that keeps two programs off one latch
            raise ConfigError(f"{path}: [{dotted.split('.')[0]}] {dotted.split('.')[1]} = "
                              f"{relative!r} is a relative path: write it in full (from /), "
                              f"as every tool and the service read it from another folder")
    return raw


def relative_path_in(dotted: str, value: str) -> Optional[str]:
    """``value`` when it is a relative file path for a key that names a file or folder
    (a path key, or a camera source that is neither a camera, a device, a URL nor a
    GStreamer pipeline), else None."""
    text = value.strip()
    key = KEY_BY_NAME.get(dotted)
    if not text or key is None or os.path.isabs(os.path.expanduser(text)):
        return None
    if key.kind == "path":
        return text
    if dotted == "camera.source":
        from .sources import STREAM_SCHEMES

        # a number is a camera index (a wrong one is said where cameras are opened), a
        # URL a stream and "!" a GStreamer pipeline: none is a file path
        if not (_WHOLE_RE.fullmatch(text) or text.lower().startswith(STREAM_SCHEMES) or "!" in text):
            return text
    return None


def ini_error_text(exc: configparser.Error) -> str:
    """configparser's error in one line, with the line it is about (its first line alone
    said "Source contains parsing errors: 'FILE'", without which line)."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: {exc.line.strip()!r} comes before any [section]"
    if isinstance(exc, configparser.ParsingError) and getattr(exc, "errors", None):
        number, line = exc.errors[0]
        try:  # configparser keeps the line as its repr()
            line = ast.literal_eval(line) if isinstance(line, str) and line[:1] in "'\"" else line
        except (ValueError, SyntaxError):
            pass
        return f"line {number}: {str(line).strip()!r} is not a 'name = value' line"
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def load_config(path: Optional[str] = None, overrides: Optional[Mapping[str, Any]] = None,
                required: bool = False) -> Config:
    """File, then overrides (dotted keys, e.g. from flags); ``None`` values are ignored.

    With ``path=None`` the default file is read if it exists, else defaults
    apply; a path given explicitly (``required=True``) must exist.
    """
    raw: Dict[str, Any] = {}
    used_path = None
    if path is None and os.path.exists(DEFAULT_PATH):
        path = DEFAULT_PATH
    if path is not None:
        if required or Path(path).exists() or path != DEFAULT_PATH:
            raw.update(read_ini(path))
            used_path = str(path)
    base = build_config(raw, origin=used_path or "defaults", path=used_path)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not flags:
        return base
    return build_config({**base.values, **flags}, origin="command line", path=used_path)


def config_from_flags(path: Optional[str], flags: Mapping[str, Any]) -> Config:
    """Flags override the file: ``flags`` are dotted keys (None = the flag was not
    given); a file named on the command line must exist. A SIGHUP reload calls
    this again with the same flags."""
    return load_config(path, flags, required=path is not None)


def lenient_latch_config(path: Optional[str], flags: Mapping[str, Any]
                         ) -> Tuple[Config, List[str]]:
    """``--force-lock`` with a config that does not validate: the latch keys alone.

    ``[latch] pin``, ``active_high`` and ``gpio`` are read from the file at
    ``path`` (the default file when None), and ``flags`` (dotted keys; None = not
    given) win; a key the file does not set has its default, as in the service. The
    file must still be a readable INI file and each latch key it sets must be
    valid: otherwise the configured pin is unknown, and guessing (the default
    GPIO17, or the wrong polarity) could drive some other device's pin or open
    the door. Then a ConfigError says why and nothing is driven. Returns the
    config and notes saying what was used, for the log.
    """
    names = ("latch.pin", "latch.active_high", "latch.gpio")
    raw: Dict[str, Any] = {}
    notes: List[str] = []
    if path is None and os.path.exists(DEFAULT_PATH):
        path = DEFAULT_PATH
    if path is not None and not os.path.lexists(path):
        # a file named on the command line: the service could not have run without it, so
        # its pin is unknown (a mistyped --config must not lock the default GPIO17 and
        # report the latch locked while the real one, on another pin, is not), and so is
        # its polarity, which no flag gives: --pin alone would drive an active-low latch
        # high, "locked" for an active-high one and open for this one
        raise ConfigError(f"{path} does not exist, so the latch pin and its polarity "
                          f"(active_high) are unknown: give the right --config")
    elif path is not None:
        # undecodable bytes (a Latin-1 comment) cannot hide the ASCII latch keys
        text = read_config_text(path, errors="replace")
        parser = ini_parser()
        try:
            parser.read_string(text, source=str(path))
        except configparser.Error as exc:
            raise ConfigError(f"{path} is not valid INI ({str(exc).splitlines()[0]})") from None
        keys = {name.split(".")[1] for name in names}
        for section in parser.sections():
            # a latch key outside [latch] ([Latch], [ latch], [DEFAULT]): the service
            # refuses the file, and reading past it would guess the pin or its polarity
            misplaced = sorted(keys & set(parser.options(section)))
            if section != "latch" and misplaced:
                raise ConfigError(f"{path} sets {', '.join(misplaced)} under [{section}], not "
                                  f"[latch], so the latch pin is unknown: fix the section name")
        for name in names:
            section, key = name.split(".")
            if parser.has_option(section, key):
                raw[name] = parser.get(section, key)
    for name in names:
        if flags.get(name) is not None:
            raw[name] = flags[name]
    values: Dict[str, Any] = {}
    for name in names:
        if name in raw:
            values[name] = build_config({name: raw[name]}, origin=str(path)).get(name)
            notes.append(f"{name} = {values[name]!r}")
        else:
            notes.append(f"{name} = {KEY_BY_NAME[name].default!r} (default)")
    return build_config(values, origin="force-lock fallback", path=path), notes


def example_ini(describe: Callable[[Key], str] = lambda k: k.help) -> str:
    """A fully commented example config: every key, its default and its help."""
    lines = ["# HappyHouse door daemon configuration.",
             "# Every key is shown commented out with its default; uncomment to change.",
             "# Flags given to happyhouse-daemon override this file; see --print-config."]
    for section in SECTIONS:
        lines.append(f"\n[{section}]")
        for key in (k for k in KEYS if k.section == section):
            allowed = ""
            if key.low is not None:
                allowed = f" (allowed {key.low:g} to {key.high:g})"
            lines.extend(f"# {part}" for part in textwrap.wrap(f"{describe(key)}{allowed}", 76))
            lines.append(f"#{key.name} = {_format(key.default)}".rstrip())
    return "\n".join(lines) + "\n"

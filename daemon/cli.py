"""``happyhouse-daemon``: the door service, plus the technician's tools.

Modes (one at a time): the service (default), ``--once`` (one capture,
gate and score), ``--check`` (go/no-go report), ``--collect`` (a house's own
frames for ``happyhouse-adapt``), ``--rollback-model`` (the previous bundle back), ``--verify-model``
(a bundle loads and passes its self-test here, before it is installed), ``--force-lock`` (drive the
latch inactive and exit; systemd's ``ExecStopPost=``), ``--print-config``.

Exit codes:
  0  the service stopped by a signal (SIGTERM, Ctrl-C), the latch locked; --once:
     happy; --check: go; --force-lock: done; --verify-model: the bundle can serve
  1  --once: not happy, no face, or a stale or still frame; --check: no-go
  2  a fixable error: bad config, model, source, GPIO, or another program
     already drives the latch from this state folder (one line on stderr)
  70 an internal error (a bug; the latch is locked first)
  130, 128+N  the other modes interrupted by Ctrl-C or signal N (one line; the latch
     is locked first)
"""

from __future__ import annotations

# Only what an early Ctrl-C needs is imported here (the stdlib and the error
# mapping); everything else is imported inside main(), where an interruption is
# answered with one line instead of a traceback.
import logging
import sys
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from .cli_errors import run_main
from .errors import HappyHouseError
from .filesafety import a_path

if TYPE_CHECKING:
    import argparse

    from .config import Config

PROG = "happyhouse-daemon"
EXIT_OK = 0
EXIT_NO = 1
EXIT_ERROR = 2
EXIT_BUG = 70

# flag dest -> config key; flags override the file
FLAG_KEYS: Dict[str, str] = {
    "source": "camera.source",
    "model": "model.bundle",
    "gpio": "latch.gpio",
    "pin": "latch.pin",
    "threshold": "model.threshold",
    "threads": "model.threads",
    "log_level": "service.log_level",
    "state_dir": "service.state_dir",
    "web": "web.address",
}


def build_parser() -> "argparse.ArgumentParser":
    import argparse

    from .config import DEFAULT_PATH, GPIO_FACTORIES, number

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Smile-gated door latch. Without a mode flag it runs the door service: "
                    "camera -> face gate -> int8 model -> vote -> latch. The latch is locked "
                    "on start, on every error and on stop.",
        epilog=__doc__.split("Exit codes:", 1)[1].join(["Exit codes:", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true",
                      help="capture one frame after exposure settles, find the face, score it, "
                           "print the result and exit (the latch is not moved unless --actuate)")
    mode.add_argument("--check", action="store_true",
                      help="go/no-go report: config, model self-test, camera, face detector, "
                           "GPIO, temperature, disk, door page (the latch is not moved unless "
                           "--test-latch)")
    mode.add_argument("--force-lock", action="store_true",
                      help="drive the latch pin inactive (locked) and exit; for ExecStopPost=")
    mode.add_argument("--collect", metavar="DIR", type=a_path,
                      help="collect clean face frames of this camera into DIR/happy or "
                           "DIR/not_happy (--label) for happyhouse-adapt; the latch is never "
                           "touched")
    mode.add_argument("--rollback-model", action="store_true",
                      help="put the previously installed model bundle back (then reload the "
                           "service: systemctl reload happyhouse)")
    mode.add_argument("--verify-model", action="store_true",
                      help="load the model bundle (--model BUNDLE, else the configured one) with "
                           "its face gate and run its self-test, as the service does at start; "
                           "no camera, no GPIO (install.sh runs it before installing a bundle)")
    mode.add_argument("--print-config", action="store_true",
                      help="print the effective config (file + flags) and exit")
    parser.add_argument("--config", metavar="PATH", type=a_path,
                        help=f"INI config file (default {DEFAULT_PATH} if it exists)")
    parser.add_argument("--source", help="camera index, /dev/videoN, video file, URL, GStreamer "
                                         "pipeline, image file, image folder or a course .h5 "
                                         "(frames replayed at the camera's size)")
    parser.add_argument("--model", metavar="BUNDLE", type=a_path,
                        help="model bundle folder (default: shipped model)")
    parser.add_argument("--gpio", choices=GPIO_FACTORIES, help="gpiozero pin factory (mock = no hardware)")
    parser.add_argument("--pin", help="latch GPIO pin, e.g. GPIO17")
    parser.add_argument("--threshold", type=number, help="override the bundle's happy threshold")
    parser.add_argument("--threads", type=int, help="TFLite interpreter threads")
    parser.add_argument("--state-dir", type=a_path, help="folder for unlock snapshots")
    # any case, as the config file's log_level: "--log-level debug" was refused
    parser.add_argument("--log-level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--json", action="store_true", help="--once/--check: print one JSON object")
    parser.add_argument("--snapshot", metavar="PATH", type=a_path,
                        help="--once: write an annotated JPEG, or PNG when PATH ends in .png "
                             "(face box, score, verdict, time)")
    parser.add_argument("--actuate", action="store_true",
                        help="--once: really unlock the latch if the verdict is happy")
    parser.add_argument("--test-latch", action="store_true",
                        help="--check: pulse the latch open for one second")
    parser.add_argument("--label", choices=("happy", "not_happy"),
                        help="--collect: the class of the frames being collected")
    parser.add_argument("--count", type=int, metavar="N", help="--collect: frames to keep (40)")
    parser.add_argument("--every", type=number, metavar="SECONDS",
                        help="--collect: at most one frame per SECONDS from a camera (0.5); "
                             "a recording (--source pictures, .h5, a video) is read once, "
                             "each of its frames offered")
    parser.add_argument("--budget-mb", type=number, metavar="MB",
                        help="--collect: most disk this session may use (500)")
    parser.add_argument("--web", metavar="ADDR:PORT",
                        help="service: serve the door's page there (e.g. 127.0.0.1:8321; any "
                             "other address needs [web] token_file)")
    parser.add_argument("--max-frames", type=int, metavar="N",
                        help="service: stop after N frames (demos and tests)")
    return parser


#: flag dest -> (the modes it belongs to, as the error names them): a flag given
#: outside its mode would be silently ignored, so it is refused instead
MODE_FLAGS: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "snapshot": (("once",), "--once"),
    "actuate": (("once",), "--once"),
    "test_latch": (("check",), "--check"),
    "json": (("once", "check"), "--once or --check"),
    "max_frames": (("service",), "the service (no mode flag)"),
    "web": (("service",), "the service (no mode flag)"),
    "label": (("collect",), "--collect"),
    "count": (("collect",), "--collect"),
    "every": (("collect",), "--collect"),
    "budget_mb": (("collect",), "--collect"),
}


#: --max-frames' top: a day of frames at 30 per second, far past any demo or test
MAX_FRAMES = 30 * 86400


def check_mode_flags(args: "argparse.Namespace") -> None:
    """ConfigError for a flag that does nothing in the chosen mode."""
    from .errors import ConfigError

    mode = next((m for m in ("once", "check", "force_lock", "print_config", "collect",
                             "rollback_model", "verify_model") if getattr(args, m)),
                "service")
    for dest, (modes, where) in MODE_FLAGS.items():
        value = getattr(args, dest)
        # given or not by identity: 0 == False, and "--every 0" beside --once was let through
        if value is not None and value is not False and mode not in modes:
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} only works with {where}; "
                              f"it would be ignored here, so nothing was run")
    if args.max_frames is not None and not 1 <= args.max_frames <= MAX_FRAMES:
        # 0 or less once ran no frame and ended "cleanly" (exit 0): a demo that proves nothing
        raise ConfigError(f"--max-frames must be 1 to {MAX_FRAMES}, got {args.max_frames}")


def flag_values(args: "argparse.Namespace") -> Dict[str, object]:
    """The config keys the command line sets (None: the flag was not given)."""
    values = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items()}
    web = getattr(args, "web", None)
    values["web.enabled"] = True if web else None  # --web turns the page on
    return values


def config_from_args(args: "argparse.Namespace") -> "Config":
    from .config import config_from_flags

    return config_from_flags(args.config, flag_values(args))


def setup_logging(level: str) -> None:
    from .journal import setup_logging as _setup

    _setup(level)


def service_options(args: "argparse.Namespace") -> Dict[str, object]:
    """``run_service``'s plain arguments from the command line: a SIGHUP re-reads the
    file with the same flags on top; ``--max-frames`` ends a demo run."""
    return {"reload": lambda: config_from_args(args), "max_frames": args.max_frames}


def _lock_purpose(args: argparse.Namespace) -> Optional[str]:
    """The modes that drive the latch, by name: they hold the state folder's lock."""
    from .statelock import SERVICE_PURPOSE

    if args.print_config or args.force_lock or args.rollback_model or args.verify_model:
        return None  # --force-lock only ever locks: it must work while anything runs;
        # --rollback-model swaps bundle folders for the running service's next reload
    if args.collect:
        return "--collect (it reads the door camera)"
    if args.once:
        return "--once --actuate" if args.actuate else None
    if args.check:
        return "--check --test-latch" if args.test_latch else None
    return SERVICE_PURPOSE


def _dispatch(cfg: Config, args: argparse.Namespace) -> int:
    if args.print_config:
        sys.stdout.write(cfg.to_ini())
        return EXIT_OK
    if args.force_lock:
        from .latch import force_lock

        return force_lock(cfg)
    if args.rollback_model:
        from .model_history import rollback

        return rollback(cfg)
    if args.verify_model:
        from .model_history import verify

        return verify(cfg)
    if not args.check:  # --check reports it as NO-GO instead
        _warn_exposure(cfg)
    from .statelock import holding_state_lock

    with holding_state_lock(cfg, _lock_purpose(args)) as held:
        if args.once:
            from .once import run_once

            return run_once(cfg, snapshot=args.snapshot, actuate=args.actuate,
                            as_json=args.json)
        if args.check:
            from .check import run_check

            return run_check(cfg, test_latch=args.test_latch, as_json=args.json)
        if args.collect:
            from .collect import run_collect

            return run_collect(cfg, args)
        from .runner import run_service

        return run_service(cfg, state_lock=held, **service_options(args))


def _warn_exposure(cfg: Config) -> None:
    """Say when others could change the config or the bundle (a way to open the door)."""
    import logging

    from .bundle import default_bundle_path
    from .filesafety import exposure

    log = logging.getLogger("happyhouse.daemon")
    found = exposure(cfg.model_bundle or default_bundle_path(), "bundle")
    if cfg.source_path:
        found = tuple(a + b for a, b in zip(exposure(cfg.source_path, "config"), found))
    for line in found[0]:
        log.warning("%s", line)
    for line in found[1]:
        log.info("%s", line)


def _force_lock_fallback(args: argparse.Namespace, exc: HappyHouseError) -> int:
    """``ExecStopPost=`` must lock even when the config is broken: with the latch keys
    alone when they can be read, and never on a guessed pin."""
    from .config import lenient_latch_config
    from .errors import ConfigError
    from .latch import force_lock

    setup_logging("INFO")
    try:
        cfg, notes = lenient_latch_config(args.config, flag_values(args))
    except ConfigError as why:
        # the rejection (exc) is the same file's problem, or a value beside the point
        raise ConfigError(f"--force-lock: cannot find the latch pin: {why}; "
                          f"no pin was driven") from None
    import logging

    logging.getLogger("happyhouse.daemon").warning(
        "--force-lock fallback: config rejected (%s); using the latch keys alone: %s",
        exc, "; ".join(notes))
    return force_lock(cfg)


def main(argv: Optional[List[str]] = None) -> int:
    # its tools raise on ending signals (below), the service sets flags: not run_main's
    return run_main(PROG, lambda: _main(argv), bug_exit=EXIT_BUG, signals=False)


def _main(argv: Optional[List[str]]) -> int:
    from contextlib import nullcontext

    from .endsignals import ignoring_sighup, raising

    args = build_parser().parse_args(argv)
    # the tools end on any ending signal through their finally blocks (the latch locks,
    # --collect closes the camera and says where it stopped); the service installs its own
    # handlers (a stop request, a SIGHUP reload)
    tool = (args.once or args.check or args.force_lock or args.print_config or args.collect
            or args.verify_model or args.rollback_model)
    # the tools that drive the pin end on Ctrl-Z too: stopped, the latch's timer cannot relock
    drives_latch = bool((args.once and args.actuate) or (args.check and args.test_latch))
    # the service starting up (its imports, config and state lock; nothing driven yet) ends
    # on an ending signal with one line and 128 + N, as the tools do (it died silently;
    # the unit counts 143, systemctl stop's, as a clean end). SIGHUP is ignored until its
    # own handlers go in, before its latch is made: from then on SIGHUP reloads
    with (nullcontext() if tool else ignoring_sighup()), raising(stops=drives_latch):
        return _configured(args)


def _configured(args: argparse.Namespace) -> int:
    """The config read (or, for ``--force-lock``, what it falls back to), logging set up,
    and the mode run."""
    with HeldConfigNotes() as notes:
        try:
            if not args.force_lock:  # ExecStopPost= must lock whatever else it was given
                check_mode_flags(args)
            cfg = config_from_args(args)
        except HappyHouseError as exc:
            if not args.force_lock:
                raise
            return _force_lock_fallback(args, exc)
    setup_logging(cfg.service_log_level)
    notes.say()
    return _dispatch(cfg, args)


class HeldConfigNotes(logging.Handler):
    """The config's warnings, held while it is read and said once logging is set up: said
    before, they were bare stderr lines that ignored --log-level (and the journal's format)."""

    NAME = "happyhouse.daemon.config"

    def __init__(self) -> None:
        super().__init__()
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> "HeldConfigNotes":
        logger = logging.getLogger(self.NAME)
        self._propagate, logger.propagate = logger.propagate, False
        logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logger = logging.getLogger(self.NAME)
        logger.removeHandler(self)
        logger.propagate = self._propagate

    def say(self) -> None:
        for record in self.records:
            if record.levelno >= logging.getLogger(self.NAME).getEffectiveLevel():
                logging.getLogger(self.NAME).handle(record)
        self.records.clear()


if __name__ == "__main__":
    sys.exit(main())

"""One exception hierarchy for the whole project.

Every error a user can cause (bad config, bad model, bad image, missing
camera) derives from :class:`HappyHouseError` and carries a message that says
what to fix. CLIs catch it, print one line and exit non-zero; anything else is
a bug.
"""

from typing import Iterable, Optional, Tuple, Type


class HappyHouseError(Exception):
    """Base of every error the project raises on purpose."""

    #: process exit code a CLI returns for this kind of error
    exit_code = 2


class ConfigError(HappyHouseError):
    """A config file, key or flag is invalid; the message names the key."""


class DataError(HappyHouseError):
    """A dataset or image is missing, unreadable or laid out wrongly."""


class ModelError(HappyHouseError):
    """A model or bundle is missing, corrupt, or disagrees with its metadata."""


class SelfTestError(ModelError):
    """The runtime does not reproduce the bundle's golden vectors: do not arm."""


class SourceError(HappyHouseError):
    """A camera or frame source cannot be opened or read."""


class FaceGateError(HappyHouseError):
    """The face detector cannot be loaded (missing cascade or YuNet model)."""


class LatchError(HappyHouseError):
    """The GPIO pin factory or latch pin cannot be claimed or driven."""


class Interrupted(BaseException):
    """A signal that ends the process arrived (Ctrl-C, SIGTERM, SIGHUP...).

    Not a :class:`HappyHouseError` and not an ``Exception``: nothing on the way
    out may swallow it, and every ``finally`` still runs (the latch locks). The
    CLI exits ``128 + signum`` with one line.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class BusyError(HappyHouseError):
    """Another door program holds the state folder (and with it the latch)."""


class OutputError(HappyHouseError):
    """Standard output cannot take the tool's report (a closed pipe, a full disk)."""


def refuse_unless(checks: Iterable[Tuple[bool, str]],
                  error: Type[HappyHouseError] = ConfigError) -> None:
    """Raise ``error(why)`` for the first ``(ok, why)`` that is not ok.

    Checks of numbers from a command line are written as what is *allowed*
    (``0 < lr <= 1``), never as what is refused: NaN fails every comparison,
    so it is refused too instead of slipping past a ``lr <= 0`` test.
    """
    for ok, why in checks:
        if not ok:
            raise error(why)


#: the largest seed a command line may give: numpy's generators refuse a negative seed (a
#: traceback once, after the data was read), and the house protocol adds fold offsets to
#: it, so the top stays far below numpy's 2**32
SEED_MAX = 10**9


def seed_check(flag: str, value: Optional[int]) -> Tuple[bool, str]:
    """A :func:`refuse_unless` check that ``value`` (None: not given) is a seed numpy takes."""
    return (value is None or 0 <= value <= SEED_MAX,
            f"{flag} must be a whole number from 0 to {SEED_MAX}, got {value}")

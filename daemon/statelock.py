"""One door program per state folder: an ``flock`` on ``<state_dir>/happyhouse.lock``.

Two programs driving one latch fight over the pin (one relocks what the other
opened, or releases a line the other still drives), and two services in one
state folder prune each other's snapshots. So every mode that drives the latch
or writes into the state folder holds this lock while it runs: the service,
``--once --actuate`` and ``--check --test-latch``; a new such mode (say a
``--collect`` that saves frames there) takes it the same way, with its own
``purpose``. ``--force-lock`` does not: it only ever locks, and must work while
anything else runs (systemd's ``ExecStopPost=``).

The kernel drops an ``flock`` when its process ends, however it ends (SIGKILL
included), so a leftover lock file never blocks a restart, and the file is
never deleted (deleting lock files races). It names its holder (pid and
purpose) for the refusal message.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .errors import BusyError, ConfigError
from .filesafety import in_the_way

log = logging.getLogger("happyhouse.daemon.statelock")

LOCK_NAME = "happyhouse.lock"
#: what the running service's lock file names as its purpose
SERVICE_PURPOSE = "the door service"


class StateLock:
    """A held lock; :meth:`release` (or process exit) lets the next program in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: Optional[int] = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock

    def still_held(self) -> bool:
        """Is the file at :attr:`path` still the one locked? Removed ("clearing a stale
        lock") or replaced, it lets a second door program in beside this one."""
        if self._fd is None:
            return False
        try:
            at_path, held = os.stat(self.path, follow_symlinks=False), os.fstat(self._fd)
        except OSError:
            return False
        return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)

    def renewed(self, purpose: str) -> "StateLock":
        """The lock taken again at :attr:`path` (BusyError if another program holds it
        now), this one released."""
        fresh = acquire(str(self.path.parent), purpose)
        self.release()
        return fresh


def folder_key(state_dir: str) -> str:
    """The one name of a state folder however it is spelt (a trailing slash, ``..``, a
    symlink to it): two spellings of one folder are one lock."""
    return os.path.realpath(state_dir)


def acquire(state_dir: str, purpose: str) -> StateLock:
    """Take the state folder's lock for ``purpose`` or raise BusyError naming the holder.

    The folder is created (private) when missing. ConfigError when it cannot
    be created or its lock file cannot be opened: then nobody can tell whether
    another program holds the latch.
    """
    folder = Path(state_dir)
    path = folder / LOCK_NAME
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # readable by all (the folder keeps strangers out): a read-only descriptor of
            # another user can still lock it
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            if not _not_a_lock_file(fd):
                _give_to_the_folder_s_owner(fd, folder)
        except PermissionError as denied:  # another user's folder: a read-only descriptor can still lock
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except FileNotFoundError:  # no lock file to read: the folder's permission is why
                raise denied from None
    except OSError as exc:
        # mkdir's bare "File exists" for a symlink to nothing or a file in the folder's place
        why = in_the_way(folder) if isinstance(exc, FileExistsError) else exc.strerror or exc
        if exc.errno == errno.EROFS:  # not a question of users: "run as happyhouse" misled
            raise ConfigError(
                f"{purpose} needs the state folder's lock {path}, which cannot be made: the "
                f"file system is read-only (mounted so, or turned read-only after a disk "
                f"error: check the card with fsck), or set [service] state_dir") from None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # not a question of users either
            raise ConfigError(
                f"{purpose} needs the state folder's lock {path}, which cannot be made: the "
                f"disk is full ({why}); free space on it, or set [service] state_dir") from None
        raise ConfigError(
            f"{purpose} needs the state folder's lock {path}, which cannot be opened "
            f"({why}{_owned_by(path)}); it keeps two door programs off one latch: run as the "
            f"service's user (sudo -u happyhouse) or set [service] state_dir / --state-dir") from None
    odd = _not_a_lock_file(fd)
    if odd:
        os.close(fd)
        raise ConfigError(f"{path} is {odd}, not a lock file a door program made: remove it "
                          f"while no door program runs (it is made again)")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _holder(fd)
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise BusyError(f"refused to start {purpose}: {holder} holds the state folder "
                            f"{folder} (one door program at a time: the camera and the "
                            f"latch); {_what_to_do(holder)}") from None
        raise ConfigError(f"cannot lock {path}: {exc.strerror or exc}") from None
    try:  # say who holds it (a read-only descriptor cannot: the refusal is vaguer then)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {purpose}\n".encode(), 0)
    except OSError:
        pass
    return StateLock(path, fd)


def _not_a_lock_file(fd: int) -> str:
    """Why the opened file is not one to lock, write and hand over ("" if it is): it is
    written, and as root handed to the folder's owner, so a hard link planted in the
    folder (to /etc/shadow, say) must not be (O_NOFOLLOW stops symbolic links only)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_nlink != 1:
        return f"a file with {info.st_nlink} names (a hard link)"
    return ""


def _owned_by(path: Path) -> str:
    """", owned by root: sudo chown happyhouse: PATH" when the lock file is another
    user's, "" otherwise (a file left by a tool run as root blocked the service)."""
    try:
        uid = os.stat(path, follow_symlinks=False).st_uid
    except OSError:
        return ""
    if uid == os.geteuid():
        return ""
    me = os.geteuid()
    return (f", owned by {_user(uid) or f'uid {uid}'}: give it to this user (sudo chown "
            f"{_user(me) or me} {path}) or remove it while no door program runs")


def _user(uid: int) -> Optional[str]:
    """The user's name (None where it has none)."""
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return None


def _give_to_the_folder_s_owner(fd: int, folder: Path) -> None:
    """Root making the lock file in the service's folder (a first ``sudo happyhouse-daemon
    --check --test-latch`` after install) hands it to the folder's owner: a root-owned 0600
    lock kept the service from starting, "run as the service's user" said of itself."""
    if os.geteuid() != 0:
        return
    try:
        owner = os.stat(folder)
        if owner.st_uid != 0 and os.fstat(fd).st_uid == 0:
            os.fchown(fd, owner.st_uid, owner.st_gid)
    except OSError:
        pass  # kept as it is: the service then says it cannot open it, with its owner


def holder(state_dir: str) -> Optional[str]:
    """Who holds the state folder's lock now ("the door service (pid 812)"), or None.

    A probe for modes that take no lock but would touch what the holder uses
    (plain ``--check`` claims the latch pin); it creates nothing.
    """
    try:
        fd = os.open(Path(state_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None  # no lock file (or not ours to read): nobody we can tell about
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # conflicts only with a held lock
    except OSError:
        return _holder(fd)
    finally:
        os.close(fd)
    return None


def _holder(fd: int) -> str:
    """Who holds the lock, as its file says; a program named there that has ended is said
    so (the file keeps the last holder's line: a brief --check probe held the lock while
    the line still named a service long gone)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    pid, _, purpose = text.partition(" ")
    if not (pid.isascii() and pid.isdigit() and len(pid) <= 10):  # '²' and 10**20 are no pids
        return "another door program"
    if not _alive(int(pid)):
        return "another door program for a moment (the last one named, pid " + pid + ", has ended)"
    return f"{purpose or 'another door program'} (pid {pid})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process (or no pid we can ask): alive
        return True
    return True


def _what_to_do(holder: str) -> str:
    """The advice for a refusal: only the service is stopped with systemctl."""
    if holder.startswith(SERVICE_PURPOSE):
        return "stop it first (sudo systemctl stop happyhouse)"
    if "has ended" in holder:
        return "try again in a moment"
    return "let it finish, or stop it first (Ctrl-C where it runs, or kill its pid)"


@contextmanager
def holding_state_lock(cfg, purpose: Optional[str]) -> Iterator[Optional[StateLock]]:
    """Hold ``cfg``'s state folder lock for ``purpose`` (None: a mode that needs none).

    With ``[latch] gpio = mock`` there is no real latch to fight over: a state
    folder that cannot be created or opened (the default /var/lib/happyhouse on
    a desktop) is then skipped with a note, while a held lock still refuses.
    """
    if purpose is None:
        yield None
        return
    held = acquire_for(cfg, purpose)
    try:
        yield held
    finally:
        if held is not None:
            held.release()


def acquire_for(cfg, purpose: str) -> Optional[StateLock]:
    """:func:`acquire` on ``cfg``'s state folder; None (a debug note) when the folder
    cannot be opened and ``[latch] gpio = mock`` (no real latch to fight over)."""
    try:
        return acquire(cfg.service_state_dir, purpose)
    except ConfigError as exc:
        if cfg.latch_gpio != "mock":
            raise
        log.debug("no state lock (mock GPIO): %s", exc)
        return None

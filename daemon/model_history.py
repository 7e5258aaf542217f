"""The installed model bundle and the one before it: install, roll back, notice a change.

Layout beside the configured bundle folder ``B`` (``[model] bundle``)::

    B             the bundle the door serves
    B.previous    the one it replaced (``deploy/install.sh --bundle`` keeps it)
    B.rolled-back the one a rollback took out (kept for the report, replaced next time)

``happyhouse-daemon --rollback-model`` swaps ``B.previous`` back into ``B``
after proving it loads; the running service picks it up on SIGHUP
(``systemctl reload happyhouse``), locked while it switches. The service
notices a new bundle at the same path by :func:`fingerprint` (a reload
rebuilds the model only when it changed) and, if the new bundle fails to load
or its self-test, keeps serving the old one (:mod:`.runner`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from .bundle import META_FILE, MODEL_FILE, default_bundle_path, load_bundle
from .endsignals import deferred
from .errors import ModelError
from .evidence import evidence_problems

log = logging.getLogger(__name__)

PREVIOUS = ".previous"
ROLLED_BACK = ".rolled-back"


def sibling(bundle: Path, suffix: str) -> Path:
    """The folder beside ``bundle`` named with ``suffix`` (``.previous``, ``.new``, ...);
    ``.`` or ``..`` name their folder, ``/`` has no place beside it (ModelError)."""
    path = named(bundle)
    return path.with_name(path.name + suffix)


def named(bundle: Union[str, Path]) -> Path:
    """``bundle`` as an absolute path with a name of its own (ModelError for ``/``)."""
    path = Path(os.path.abspath(bundle))
    if not path.name:
        raise ModelError(f"{bundle} cannot be a model bundle: a bundle is a folder, kept beside "
                         f"its previous version (name one, e.g. /etc/happyhouse/bundle)")
    return path


def fingerprint(path: Union[str, Path, None]) -> Optional[str]:
    """sha256 of the bundle's ``model.json`` (it names every other file's sha256); None if unreadable."""
    root = default_bundle_path() if path in (None, "") else Path(path)
    if root.name in (META_FILE, MODEL_FILE) and root.is_file():  # as load_bundle takes it
        root = root.parent
    try:
        return hashlib.sha256((root / META_FILE).read_bytes()).hexdigest()
    except OSError:
        return None


#: seconds an install or rollback waits for another one to finish its swap
SWAP_WAIT = 10.0


def swap_lock_path(bundle: Path) -> Path:
    """The lock file every swap of ``bundle``'s folders holds (install.sh takes it too)."""
    return bundle.parent / f".{bundle.name}.swap.lock"


def wait_for_swap(bundle: Optional[Union[str, Path]], wait: float = SWAP_WAIT,
                  given_up: Callable[[], Optional[str]] = lambda: None) -> bool:
    """Wait, at most ``wait`` seconds and while ``given_up()`` says nothing (a stop
    received), while an install or a rollback of ``bundle`` holds its swap lock; False if
    it still does. A reload between an install's two renames found no bundle and told the
    technician to roll back. Creates nothing: no lock file, no swap to wait for."""
    if not bundle:
        return True
    try:
        fd = os.open(swap_lock_path(named(bundle)), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return True
    try:
        if not _flock_within(fd, fcntl.LOCK_SH, wait, given_up):
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return True
    finally:
        os.close(fd)


def _flock_within(fd: int, mode: int, wait: float,
                  given_up: Callable[[], Optional[str]] = lambda: None) -> bool:
    """Take the flock ``mode`` on ``fd`` within ``wait`` seconds (and before ``given_up()``
    says something); False when another holder keeps it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline or given_up():
                return False
            time.sleep(0.1)


@contextmanager
def swapping(bundle: Path, wait: Optional[float] = None) -> Iterator[None]:
    """Hold the swap lock of ``bundle`` (one install or rollback at a time): an install
    racing a rollback nested the new bundle inside the old one's folder and lost the
    previous one. ModelError when another swap holds it for more than ``wait`` seconds."""
    wait = SWAP_WAIT if wait is None else wait
    path = swap_lock_path(bundle)
    try:
        try:
            # readable by all: the service, as its own user, waits on it during a reload
            # (a root-only 0600 file, made by a rollback run as root, it could not open)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_uid == os.geteuid():  # one made 0600 before
                    os.fchmod(fd, 0o644)
        except PermissionError:  # root's lock file: a read-only descriptor locks as well
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise ModelError(f"cannot open the bundle swap lock {path}: {exc.strerror or exc}; "
                         f"nothing was changed") from None
    try:
        if not _flock_within(fd, fcntl.LOCK_EX, wait):
            raise ModelError(f"another install or rollback of {bundle} is under way (it holds "
                             f"{path}); try again when it is done; nothing was changed")
        yield
    finally:
        os.close(fd)


def install(new: Union[str, Path], dest: Union[str, Path]) -> Path:
    """Copy ``new`` to ``dest`` (checked first), keeping the bundle it replaces as ``dest.previous``.

    The copy is verified (``load_bundle``) beside ``dest`` before the swap, so
    a bad bundle changes nothing. What ``deploy/install.sh --bundle`` does on a Pi.
    """
    new, dest = Path(new), Path(dest)
    load_bundle(new)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # the lock from the staging copy to the swap: two installs at once deleted each
    # other's staging (a fixed name) and left no bundle at all
    with swapping(dest):
        staging = sibling(dest, ".new")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(new, staging)
        try:
            load_bundle(staging)
        except ModelError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if dest.exists():
            previous = sibling(dest, PREVIOUS)
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(dest, previous)
        os.replace(staging, dest)
    return dest


def rollback_paths(bundle: Path) -> Path:
    """The previous bundle's folder, or ModelError saying why there is none to restore."""
    previous = sibling(bundle, PREVIOUS)
    if not previous.is_dir():
        raise ModelError(f"no previous bundle to roll back to: {previous} does not exist "
                         f"(install.sh --bundle keeps the bundle it replaces there)")
    try:
        loaded = load_bundle(previous)
    except ModelError as exc:
        raise ModelError(f"the previous bundle cannot be restored, it does not load: {exc}") from None
    # one the door would refuse to arm (an older release's adaptation, a 16-face hold-out)
    # is no way back: "rolled back, reload the door" ended in a refused reload
    problems = evidence_problems(loaded.meta)
    if problems:
        raise ModelError(f"the previous bundle {previous} cannot be restored: its recorded "
                         f"validation figures are too poor to arm a door ({'; '.join(problems)}); "
                         f"nothing was changed")
    return previous


def restore_previous(bundle: Union[str, Path]) -> Optional[Path]:
    """``bundle.previous`` -> ``bundle``; the replaced one is kept as ``bundle.rolled-back``
    (its folder is returned; None when there was no bundle at ``bundle`` to keep)."""
    bundle = named(bundle)
    # /etc/happyhouse is root's: the service user may read the bundles, not move them (nor
    # make the swap lock there)
    if bundle.parent.is_dir() and not os.access(bundle.parent, os.W_OK | os.X_OK):
        raise ModelError(f"cannot move bundles in {bundle.parent} as this user: run it as root "
                         f"(sudo /opt/happyhouse/venv/bin/happyhouse-daemon --rollback-model "
                         f"--config /etc/happyhouse/happyhouse.conf); nothing was changed")
    rollback_paths(bundle)  # nothing to restore: said before any lock file is made
    with swapping(bundle):
        return _restore_previous(bundle)


def _restore_previous(bundle: Path) -> Optional[Path]:
    previous = rollback_paths(bundle)  # again: another swap may have moved it meanwhile
    out = sibling(bundle, ROLLED_BACK)
    replaced = bundle.exists()
    try:
        if replaced:
            shutil.rmtree(out, ignore_errors=True)
        with deferred():  # a signal between the renames left no bundle to serve
            if replaced:
                os.replace(bundle, out)
            os.replace(previous, bundle)
    except OSError as exc:
        raise ModelError(f"rolling back in {bundle.parent} failed: {exc.strerror or exc} "
                         f"(the bundles are {bundle}, {previous} and {out}: put the one to "
                         f"serve at {bundle}, then reload)") from None
    return out if replaced else None


def rollback(cfg, out=None) -> int:
    """``happyhouse-daemon --rollback-model``: exit 0 restored, 2 nothing (or nothing good) to restore."""
    out = out if out is not None else sys.stdout
    if not cfg.model_bundle:
        raise ModelError("[model] bundle is not set: the door serves the shipped model, "
                         "which has no previous version to roll back to")
    bundle = named(cfg.model_bundle)
    taken = restore_previous(bundle)
    restored = load_bundle(bundle)
    kept = (f"the one it replaced is kept in {taken}" if taken is not None
            else f"there was no bundle at {bundle} to keep")
    log.warning("model rolled back: %s now serves %s (sha256 %s); %s",
                bundle, restored.meta.get("name", "?"), restored.sha256[:12], kept)
    out.write(f"rolled back: {bundle} is the previous bundle again (sha256 "
              f"{restored.sha256[:12]}); {kept}\n"
              f"reload the door to serve it: sudo systemctl reload happyhouse\n")
    return 0


def verify(cfg, out=None) -> int:
    """``happyhouse-daemon --verify-model``: the configured bundle loads with its face gate
    and passes its self-test on this machine (ModelError otherwise: exit 2); the latch and
    the camera are not touched."""
    from .pipeline import Pipeline

    out = out if out is not None else sys.stdout
    pipeline = Pipeline.from_config(cfg)  # the service's own load: files, shapes, self-test
    out.write(f"model bundle {cfg.model_bundle or '(shipped)'} can serve: self-test passed "
              f"(sha256 {pipeline.model_sha256[:12]}, threshold {pipeline.threshold:.3f})\n")
    return 0

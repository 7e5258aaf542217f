"""Who else could change what the door trusts (the config file and the model bundle), and
the folders the tools write to.

A config or bundle that another user can write is a way to open the door (a lower
threshold, another model) without being root. Loading one is not refused (a
technician may be mid-setup) but it is said: a warning in the journal, NO-GO in
``--check`` (issue 16 item 13). A symlink is reported with its target, which is
what is checked.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable, List, Tuple, Type

from .errors import DataError, HappyHouseError

#: group- or world-writable
OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _writable_by_others(path: Path) -> bool:
    mode = path.stat().st_mode
    if not mode & OTHERS_WRITE:
        return False
    # a sticky folder (/tmp) lets others add files but not replace this one's
    return not (stat.S_ISDIR(mode) and mode & stat.S_ISVTX)


def check_creatable(folder: os.PathLike, what: str) -> None:
    """DataError "``what`` ``folder`` cannot be created" when it plainly cannot (its nearest
    existing ancestor is a file or not writable), creating nothing. The tools check their
    output folders before their work: a wrong path is one line at the start, not a
    traceback after minutes of work, and a run refused for its input leaves no folder."""
    folder = Path(folder).expanduser().absolute()
    there = folder
    while not there.exists() and there != there.parent:
        there = there.parent
    if not there.is_dir():
        raise DataError(f"{what} {folder} cannot be created: {there} is not a folder")
    if not os.access(there, os.W_OK | os.X_OK):
        raise DataError(f"{what} {folder} cannot be created: {there} is not writable")


def check_file_creatable(path: os.PathLike, what: str) -> Path:
    """``path`` for an output file, or DataError when it plainly cannot be written: a
    folder in its place (which passes its parent's check, and failed only at the write,
    after the work), or a parent that cannot be created (:func:`check_creatable`)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{what} {path} is a folder: give the name of the file to write")
    if _written_into(path):  # /dev/null, a pipe: written into, so /dev need not be writable
        return path
    check_creatable(path.parent, f"{what}'s folder")
    return path


def _written_into(path: Path) -> bool:
    """Whether ``path`` (links followed) is a character device or a FIFO: written into,
    never renamed over."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def real_path(path: os.PathLike) -> str:
    """``path`` with ``~`` and every link resolved, as a string; unlike ``Path.resolve``
    it never raises (a link loop is a RuntimeError there, a traceback in a tool)."""
    return os.path.realpath(Path(path).expanduser())


def a_path(text: str) -> str:
    """An argparse type: a path must name something. An empty one (``--collect "$DIR"``
    with DIR unset) read as "not given" or as the current folder: --collect "" ran the
    door service, --verify-model --model "" passed on the shipped bundle, and
    happyhouse-train --out "" wrote a model and its plots into the current folder."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path: name a folder or file")
    return text


def path_arg(text: str) -> Path:
    """:func:`a_path` as a ``Path``."""
    return Path(a_path(text))


def require_file(path: os.PathLike, what: str, error: Type[HappyHouseError] = DataError) -> Path:
    """``path`` if it is a file this process can read, else ``error`` saying which of the
    three it is: missing, a folder (everything read "does not exist" for a folder given
    where its model.keras was meant), or unreadable (read "is corrupt")."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file: give the file in it")
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {path} cannot be read (permission denied): chmod u+r it or run "
                    f"as its owner")
    return path


def write_file_whole(path: os.PathLike, data: bytes, what: str) -> Path:
    """Write ``data`` to ``path`` whole or not at all: a file beside it, then a rename, so
    an interrupted or failed write never leaves half a results file, table or picture in
    place of a good one. A symlink to a file is written through (the file it names is
    replaced, the link stays); the new file keeps the permissions of the one it replaces,
    and a new one gets what the umask allows (not the temporary file's private rw-------).
    A write that fails is DataError "cannot write ``what`` ``path``: why", one line."""
    path = Path(path)
    try:
        kind = os.stat(path).st_mode  # links followed: /dev/stdout is this process's pipe
    except OSError:
        kind = None
    if kind is not None and (stat.S_ISCHR(kind) or stat.S_ISFIFO(kind)):
        # /dev/null, a pipe: written into, never renamed over (a rename made /dev/null a
        # regular file, for every program on the machine)
        try:
            with open(path, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise DataError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
        return path
    target = Path(os.path.realpath(path)) if path.is_symlink() and path.exists() else path
    if kind is not None and not stat.S_ISREG(kind) and not stat.S_ISDIR(kind):
        raise DataError(f"cannot write {what} {path}: it is a device or socket, not a file; "
                        f"give a file name")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except OSError:
                mode = 0o666 & ~current_umask()
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise DataError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def current_umask() -> int:
    """This process's umask, read without setting it (``os.umask`` sets it, for every thread
    at once); 0o022 where /proc does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_text_file(path: os.PathLike, text: str, what: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (:func:`write_file_whole`),
    its folder made first."""
    path = Path(path).expanduser()
    make_folder(path.parent, f"{what}'s folder")
    return write_file_whole(path, text.encode("utf-8"), what)


def check_replaceable(out: os.PathLike) -> None:
    """DataError unless ``out`` can be a folder the tool replaces whole: not a file, and
    not a symlink to nothing (the final rename failed on it, a traceback after all the
    work). An empty path never gets here: :func:`a_path` refuses it on the command line."""
    out = Path(out).expanduser()
    if out.is_symlink() and not out.exists():
        raise DataError(f"output {out} is a symlink to {os.readlink(out)}, which does not "
                        f"exist: remove the link or give another folder")
    if out.exists() and not out.is_dir():
        raise DataError(f"output {out} exists and is not a folder")


def in_the_way(folder: os.PathLike) -> str:
    """Why ``folder`` could not be made though mkdir said only "File exists": a symlink to
    nothing in its place or above it, or a file there."""
    folder = Path(folder).expanduser()
    for place in (folder, *folder.parents):  # the folder or one above it
        if place.is_symlink() and not place.exists():
            return (f"{place} is a symlink to {os.readlink(place)}, which does not exist: "
                    f"create that folder or give another path")
    for place in (folder, *folder.parents):
        if place.exists() and not place.is_dir():
            return f"{place} is a file, not a folder: move it away or give another path"
    return "something else is in its place"


def make_folder(folder: os.PathLike, what: str, mode: int = 0o777) -> Path:
    """``folder``, created with its parents (``mode`` for ``folder`` itself when made, as
    ``Path.mkdir`` does), or DataError
    "``what`` ``folder`` cannot be created" (one line, where :func:`check_creatable` could
    not tell beforehand)."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # mkdir's bare "File exists" / "Not a
        # directory" for a file or a symlink to nothing in the folder's place or above it
        raise DataError(f"{what} {folder} cannot be created: {in_the_way(folder)}") from None
    except OSError as exc:
        raise DataError(f"{what} {folder} cannot be created: {exc.strerror or exc}") from None
    return folder


def replace_folders(moves: Iterable[Tuple[Path, Path]]) -> None:
    """Put each (new folder, destination) in place, replacing the destination whole.

    The slow part (copying a folder made on another file system, /tmp say) happens
    beside each destination first, for every pair; then each swap is two renames, the
    old folder put aside until the new one is in. A Ctrl-C or an error before the swaps
    leaves every destination as it was (a half-made output never replaces a good one,
    and a good one is never deleted for nothing).
    """
    near = []
    try:
        for new, dest in moves:
            dest = Path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            holder = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new.", dir=dest.parent))
            near.append((holder, dest))
            shutil.move(str(new), str(holder / "folder"))  # a rename on one file system
        for holder, dest in near:
            old = holder / "old"
            if dest.exists():
                os.replace(dest, old)
            try:
                os.replace(holder / "folder", dest)
            except BaseException:
                if old.exists() and not dest.exists():
                    os.replace(old, dest)
                raise
    finally:
        for holder, _ in near:
            shutil.rmtree(holder, ignore_errors=True)


def inside(path: os.PathLike, folder: os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or somewhere under it (symlinks resolved)."""
    path, folder = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    return path == folder or folder in path.parents


def exposure(path: os.PathLike, what: str) -> Tuple[List[str], List[str]]:
    """(problems, notes) for ``path``: problems = others can change it; notes = symlinks."""
    path = Path(path)
    problems: List[str] = []
    notes: List[str] = []
    if path.is_symlink():
        notes.append(f"{what} {path} is a symlink to {path.resolve()}")
    real = path.resolve()
    if not real.exists():
        return problems, notes
    targets = [real, real.parent]
    if real.is_dir():
        targets += sorted(p for p in real.iterdir() if p.is_file())
    for target in targets:
        try:
            if _writable_by_others(target):
                mode = stat.S_IMODE(target.stat().st_mode)
                problems.append(f"{what} {'folder ' if target.is_dir() else ''}{target} is "
                                f"writable by other users (mode {mode:04o}): chmod go-w")
        except OSError:
            continue
    return problems, notes

"""The one way pose-app writes a file. Every output (CSV, JSON, annotated video and pictures,
angles, repetitions, TRC, MOT, figures, snapshots, settings) goes through here, so each of them:

- is never one of the inputs: a target with the same device and inode as an input (the same
  path, another spelling of it, a hard link, a symlink to it) is refused, checked again on the
  opened file, so that nothing can swap it in between;
- is a regular file: a symlink is written through (its target is written, the link stays as it
  is), a device, FIFO or socket is refused, never opened for writing and never replaced;
- is held with an exclusive lock (flock) while it is written, so a second run on the same output
  stops with one line instead of interleaving its rows with the first one's;
- has every write checked: a failed write (full disk, quota, I/O error) is a PoseAppError naming
  the file, never an "ok";
- when written whole (`write_whole`, `replacing`), goes to a temporary file beside its target
  first and replaces the target by a rename once complete, so a file under its own name is always
  a finished one, whatever stops the program.

Streams (`open_output`) are for files written as the run goes (the recording's CSV and JSON):
rows are flushed as they are written, so an interrupted run keeps every whole line.
"""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import os
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from pose_app.errors import PoseAppError, one_line

try:  # POSIX; on Windows outputs are not locked (a second run is not detected there)
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms the tests run on
    fcntl = None  # type: ignore[assignment]

# (device, inode): what makes two paths the same file.
FileIdentity = tuple[int, int]
NO_INPUTS: frozenset[FileIdentity] = frozenset()
# The mark of a whole file's temporary name: .<name>.<random>.partial beside the target.
PARTIAL_SUFFIX = ".partial"


def file_identity(path: str | Path) -> FileIdentity | None:
    """(device, inode) of the file at path (symlinks followed); None when there is none."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


def identities(paths: Iterable[str | Path]) -> frozenset[FileIdentity]:
    """The identities of the files among `paths` that exist."""
    return frozenset(identity for identity in map(file_identity, paths) if identity is not None)


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def written_path(path: str | Path) -> Path:
    """The file that writing `path` writes: a symlink's final target (written through, the link
    kept), the path itself otherwise."""
    path = Path(path).expanduser()
    try:
        if path.is_symlink():
            return Path(os.path.realpath(path))
    except OSError:
        pass
    return path


def check_output_path(path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """PoseAppError unless `path` can be written as an output before any work is done: not a
    folder, a device, FIFO or socket, not one of the `inputs`, its folder there and writable."""
    path = Path(path)
    target = written_path(path)
    try:
        status = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # not there (yet), or its folder is not
        status = None
    except OSError as error:  # a name too long, a loop of links, a file used as a folder...
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    if status is not None:
        if stat.S_ISDIR(status.st_mode):
            raise PoseAppError(f"cannot write {path}: it is a directory")
        if not stat.S_ISREG(status.st_mode):
            raise PoseAppError(f"cannot write {path}: it is not a regular file (a device, FIFO or socket)")
        if (status.st_dev, status.st_ino) in inputs:
            raise PoseAppError(f"output {path} is one of the inputs (the same file); refusing to overwrite it")
    folder = target.parent
    try:
        folder_ok = folder.is_dir()
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    if not folder_ok:
        raise PoseAppError(f"cannot write {path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK) or (status is not None and not os.access(target, os.W_OK)):
        raise PoseAppError(f"cannot write {path}: permission denied")


def _check_opened(fd: int, path: Path, inputs: frozenset[FileIdentity]) -> None:
    """The opened file is a regular file and not an input (PoseAppError, fd closed, otherwise)."""
    status = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(status.st_mode):
        problem = f"cannot write {path}: it is not a regular file (a device, FIFO or socket)"
    elif (status.st_dev, status.st_ino) in inputs:
        problem = f"output {path} is one of the inputs (the same file); refusing to overwrite it"
    if problem is not None:
        os.close(fd)
        raise PoseAppError(problem)


def lock_exclusively(fd: int, path: Path) -> None:
    """An exclusive lock on the open file (PoseAppError, fd closed, when another process holds
    one: another pose-app run is writing it). Released when the file is closed."""
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise PoseAppError(
                f"{path} is being written by another pose-app run; wait for it to finish or choose another output"
            ) from None
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return  # a filesystem without locks: written unlocked, as before
        raise PoseAppError(f"cannot lock {path}: {_reason(error)}") from None


def _open_checked(path: Path, flags: int, inputs: frozenset[FileIdentity]) -> int:
    """A file descriptor open for writing on `path` (flags added to O_WRONLY), checked and locked;
    nothing in the file is changed yet."""
    check_output_path(path, inputs)  # refuses devices and FIFOs before opening them (an open can block or act)
    try:
        # O_NONBLOCK: a FIFO put there since the check makes open fail instead of waiting for a reader.
        fd = os.open(path, os.O_WRONLY | flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOCTTY", 0), 0o666)
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    _check_opened(fd, path, inputs)
    lock_exclusively(fd, path)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


class _CheckedText(io.TextIOWrapper):
    """A text stream whose failed writes and flushes are PoseAppErrors naming the file."""

    def __init__(self, raw: IO[bytes], path: Path):
        super().__init__(raw, encoding="utf-8", newline="", write_through=False)
        self.output_path = path

    def write(self, text: str) -> int:
        try:
            return super().write(text)
        except OSError as error:
            raise PoseAppError(f"writing {self.output_path} failed: {_reason(error)}") from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as error:
            raise PoseAppError(f"writing {self.output_path} failed: {_reason(error)}") from None

    def close(self) -> None:
        try:
            super().close()
        except OSError as error:
            raise PoseAppError(f"writing {self.output_path} failed: {_reason(error)}") from None


def open_output(path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> IO[str]:
    """An output written as the run goes: checked, locked (until closed), then emptied; a UTF-8
    text stream (CSV newlines) whose failed writes are PoseAppErrors. A symlink is written
    through."""
    path = Path(path)
    fd = _open_checked(path, os.O_CREAT, inputs)
    try:
        os.ftruncate(fd, 0)
        raw = io.FileIO(fd, "w", closefd=True)
    except OSError as error:
        os.close(fd)
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    return _CheckedText(io.BufferedWriter(raw), path)


def open_output_fd(path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> int:
    """open_output for a writer that writes the file by its own means (the video encoder): a
    locked, emptied file descriptor to hold while it does."""
    path = Path(path)
    fd = _open_checked(path, os.O_CREAT, inputs)
    try:
        os.ftruncate(fd, 0)
    except OSError as error:
        os.close(fd)
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    return fd


def claim_existing(path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> int | None:
    """Lock an output that is written later (whole) for as long as the returned descriptor is
    open, when the file is already there (None when it is not): a second run on it stops now,
    not after its work. The file itself is not changed."""
    target = written_path(path)
    check_output_path(path, inputs)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    _check_opened(fd, Path(path), inputs)
    lock_exclusively(fd, Path(path))
    return fd


@contextlib.contextmanager
def replacing(path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS, *, binary: bool = False) -> Iterator[IO]:
    """A file written whole: the stream given goes to a temporary file beside the target (a
    symlink's target: the link stays), which replaces the target when the block ends without an
    error; otherwise the target is left as it was and the temporary file removed. The target is
    locked meanwhile (PoseAppError when another run holds it), and so is the new file from its
    creation."""
    path = Path(path)
    target = written_path(path)
    check_output_path(path, inputs)
    lock = claim_existing(path, inputs)
    try:
        try:
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX)
        except OSError as error:
            raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
        try:
            lock_exclusively(fd, path)
            _give_mode(fd, target)
            raw = io.FileIO(fd, "w", closefd=True)
            stream: IO = io.BufferedWriter(raw) if binary else _CheckedText(io.BufferedWriter(raw), path)
            try:
                yield stream
                stream.flush()
                os.fsync(raw.fileno())
                # Renamed while the new file is still open and locked: no other run can take it in between.
                os.replace(temporary, target)
            finally:
                with contextlib.suppress(OSError, PoseAppError):
                    stream.close()
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(error, OSError):
                raise PoseAppError(f"writing {path} failed: {_reason(error)}") from None
            raise
    finally:
        if lock is not None:
            os.close(lock)


def _give_mode(fd: int, target: Path) -> None:
    """The new file gets the mode of the file it replaces, or the one a plain open would give
    (mkstemp makes it private)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError, AttributeError, NotImplementedError):
        os.fchmod(fd, mode)


def write_whole(path: str | Path, data: str | bytes, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """A file written whole (see `replacing`): text as UTF-8, or bytes as they are."""
    with replacing(path, inputs, binary=isinstance(data, bytes)) as stream:
        stream.write(data)


def publish(temporary: str | Path, path: str | Path, inputs: frozenset[FileIdentity] = NO_INPUTS) -> None:
    """A finished temporary file (made beside `path` by its writer) put in place of `path` by a
    rename, with the checks of `replacing`: a symlink's target is replaced (the link stays), an
    input, a device or a file another run holds is not."""
    target = written_path(path)
    lock = claim_existing(path, inputs)
    try:
        os.replace(temporary, target)
    except OSError as error:
        raise PoseAppError(f"cannot write {path}: {_reason(error)}") from None
    finally:
        if lock is not None:
            os.close(lock)


# --- naming the app's own files --------------------------------------------------------------

SNAPSHOT_PREFIX = "pose-snapshot"


def unused_stem(directory: Path, prefix: str, suffixes: tuple[str, ...]) -> Path:
    """<directory>/<prefix>-YYYYmmdd-HHMMSS, with -2, -3, ... appended while a file with that
    stem and any of `suffixes` exists: files made within one second never overwrite each other."""
    stem = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    for number in itertools.count(1):
        candidate = directory / (stem if number == 1 else f"{stem}-{number}")
        if not any(Path(f"{candidate}{suffix}").exists() for suffix in suffixes):
            return candidate
    raise AssertionError("unreachable")


def snapshot_path(directory: Path) -> Path:
    """A new snapshot's path in `directory`: pose-snapshot-YYYYmmdd-HHMMSS.png, never taken."""
    return Path(f"{unused_stem(directory, SNAPSHOT_PREFIX, ('.png',))}.png")


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 gray or BGR image as PNG; PoseAppError saying why when it cannot."""
    path = Path(path)
    try:
        ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    except cv2.error as error:
        raise PoseAppError(f"cannot encode a {np.shape(image)} image as PNG: {one_line(error)}") from None
    if not ok:
        raise PoseAppError(f"cannot encode a {np.shape(image)} image as PNG")
    write_whole(path, data.tobytes())
    return path

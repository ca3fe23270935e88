"""Reading a dock without trusting it.

A dock is written by vendor software, by recorder cards formatted on the recorder, and by
people. Every name and every entry there is untrusted:

- a name is bytes (see pipeline.names): the bytes are kept as the filesystem gave them, to
  open the file again, beside a readable form, to show and search it;
- a symbolic link anywhere below a station root is never followed, ``.ingested`` included:
  every open and rename goes component by component from a directory descriptor with
  ``O_NOFOLLOW``, so a link cannot lead a sweep out of the dock, whatever is swapped in
  between two steps;
- what is read is the file that was planned: device, inode, size and mtime are compared
  after the open.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from pipeline.errors import SourceError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO someone swapped in must not wait for a writer; O_NOCTTY: a
# terminal device must not become ours.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY

#: Files smaller than this are never called sparse: filesystems keep tiny files inline,
#: with no blocks of their own.
SPARSE_MIN_BYTES = 1 << 20


# ---------------------------------------------------------------------------- dock entries


class NotARegularFile(SourceError):
    """A dock entry that is a symbolic link, a FIFO, a socket or a device: never read."""

    code = "not-a-regular-file"


class OutsideDock(SourceError):
    """A path that is not below the station root (or climbs out of it with ``..``)."""

    code = "outside-dock"


def kind_of(mode: int) -> str:
    """A zh-CN + English name of what a non-regular entry is, for the sweep report."""
    if stat.S_ISLNK(mode):
        return "符号链接 symbolic link"
    if stat.S_ISFIFO(mode):
        return "命名管道 FIFO"
    if stat.S_ISSOCK(mode):
        return "套接字 socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "设备文件 device file"
    if stat.S_ISDIR(mode):
        return "文件夹 folder"
    return "特殊文件 special file"


def relative_parts(root: Path, path: PurePath) -> tuple[str, ...]:
    """The components of ``path`` below ``root``; OutsideDock when it is not below it."""
    try:
        parts = PurePath(path).relative_to(root).parts
    except ValueError:
        raise OutsideDock(Path(path), f"not in the station's dump folder {root}") from None
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise OutsideDock(Path(path), f"not a file name below the dump folder {root}")
    return parts


@contextlib.contextmanager
def open_folder(root: Path, parts: Sequence[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of the folder ``root/parts...``, reached without following any link
    below ``root`` (``create`` makes missing folders). ELOOP/ENOTDIR come out as OSError."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Identity:
    """Which file a dock entry is, and how it looked."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    mode: int
    blocks: int

    @classmethod
    def of(cls, st: os.stat_result) -> Identity:
        return cls(
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_mode,
            getattr(st, "st_blocks", st.st_size // 512 + 1),
        )

    @property
    def allocated(self) -> int:
        return self.blocks * 512


def lstat_in_dock(root: Path, path: PurePath) -> os.stat_result:
    """lstat of a dock entry, reached without following links (OSError as raised)."""
    parts = relative_parts(root, path)
    with open_folder(root, parts[:-1]) as folder:
        return os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)


def open_in_dock(root: Path, path: PurePath, shown: str) -> tuple[io.FileIO, Identity]:
    """Open a dock file for reading, refusing anything but a regular file reached without a
    link. The file object's ``name`` is ``shown`` (error messages must be storable text).

    Raises NotARegularFile, OutsideDock, or SourceError (unreadable; FileNotFoundError as the
    cause when the file vanished)."""
    subject = Path(shown)
    parts = relative_parts(root, path)
    try:
        with open_folder(root, parts[:-1]) as folder:
            before = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
            if not stat.S_ISREG(before.st_mode):
                raise NotARegularFile(subject, f"{kind_of(before.st_mode)}: not read")
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
    except NotARegularFile:
        raise
    except OSError as exc:
        raise _source_error(subject, exc) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            raise NotARegularFile(subject, "replaced while being opened: not read")
        os.set_blocking(fd, True)
        handle = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    handle.name = shown
    return handle, Identity.of(st)


def _source_error(subject: Path, exc: OSError) -> SourceError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return NotARegularFile(
            subject, "a folder on its path is a symbolic link or not a folder: not read"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return SourceError(subject, "name too long for this system")
    return SourceError(subject, f"cannot read: {exc.strerror or exc}")


def vanished(error: BaseException) -> bool:
    """True when a SourceError was caused by the file no longer being there."""
    cause = error.__cause__
    return isinstance(cause, FileNotFoundError)


# ------------------------------------------------------------------------ release from dock


def unlink_in_dock(root: Path, path: PurePath) -> None:
    parts = relative_parts(root, path)
    with open_folder(root, parts[:-1]) as folder:
        os.unlink(parts[-1], dir_fd=folder)


def move_in_dock(root: Path, path: PurePath, target: PurePath) -> PurePath:
    """Rename ``path`` to ``target`` (both below ``root``), making the target's folders,
    following no link on either side and never replacing an existing entry: a name already
    taken gets ``.1``, ``.2``… before its suffix. Returns the name used."""
    source_parts = relative_parts(root, path)
    target_parts = relative_parts(root, target)
    with (
        open_folder(root, source_parts[:-1]) as source_folder,
        open_folder(root, target_parts[:-1], create=True) as target_folder,
    ):
        name = _free_name(target_folder, target_parts[-1])
        # link + unlink rather than rename: link refuses an existing name (no overwrite, even
        # when another sweep takes the same name at the same moment).
        while True:
            try:
                os.link(
                    source_parts[-1],
                    name,
                    src_dir_fd=source_folder,
                    dst_dir_fd=target_folder,
                    follow_symlinks=False,
                )
                break
            except FileExistsError:
                name = _free_name(target_folder, name)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
                    raise
                # Filesystems without hard links (FAT cards, some network mounts): rename,
                # having checked the name is free just now.
                os.rename(
                    source_parts[-1], name, src_dir_fd=source_folder, dst_dir_fd=target_folder
                )
                return PurePath(*target_parts[:-1], name)
        os.unlink(source_parts[-1], dir_fd=source_folder)
    return PurePath(*target_parts[:-1], name)


def _free_name(folder: int, name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    candidate, n = name, 1
    while _exists(folder, candidate):
        candidate = f"{stem}.{n}.{suffix}" if suffix else f"{stem}.{n}"
        n += 1
    return candidate


def _exists(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True

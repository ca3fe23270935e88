"""Who is still writing a dock file: open file descriptors, as Linux shows them in /proc.

A recorder's upload tool may pause for many seconds with the file open (a USB card that
stalls, a network share that buffers): a file unchanged for ``stable_s`` is not finished while
a process holds it open for writing. /proc shows every open descriptor of every process this
user may see (root sees all; another user sees only its own processes, so a dock written by
another account should run its sweeps as root, or rely on ``stable_s``). A writer on another
machine (a dock on a network mount) is invisible here: :func:`is_network_mount` tells the
sweep to be patient instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")

#: Filesystem types whose writers may sit on another machine.
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "fuse.sshfs"}
)

_WRITE_MODES = os.O_WRONLY | os.O_RDWR


def open_for_writing(roots: Iterable[Path]) -> set[tuple[int, int]]:
    """(device, inode) of every file below ``roots`` that some process has open for writing.
    Empty where there is no /proc (the sweep then relies on ``stable_s`` alone)."""
    prefixes = tuple(f"{root}/" for root in roots)
    found: set[tuple[int, int]] = set()
    if not prefixes or not PROC.is_dir():
        return found
    for pid in os.listdir(PROC):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to look at
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
                if not target.startswith(prefixes):
                    continue
                if not _writes(pid, fd):
                    continue
                st = os.stat(f"{fd_dir}/{fd}")  # the open file itself, wherever it now is
            except OSError:
                continue
            found.add((st.st_dev, st.st_ino))
    return found


def _writes(pid: str, fd: str) -> bool:
    with open(f"/proc/{pid}/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("flags:"):
                return bool(int(line.split()[1], 8) & _WRITE_MODES)
    return False


def is_network_mount(path: Path) -> bool:
    """True when ``path`` lies on a network filesystem (by /proc/self/mounts)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    best, best_type = "", ""
    target = str(path)
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, best_type = point, fields[2]
    return best_type in NETWORK_FILESYSTEMS

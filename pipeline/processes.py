"""Whether the process that claimed a piece of work is still there: a job's owner, a
temporary's writer. Work names its process as host and pid; only the host itself can tell."""

from __future__ import annotations

import os
import socket


def gone(host: str, pid: str) -> bool:
    """True only when ``pid`` is a process of this host that no longer exists. Another host's
    process, or one we may not signal, counts as alive: its lease or its age must tell."""
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False

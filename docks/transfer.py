"""Sending one file over tus, resumably, and the pace of it (docs/station-api.md).

:func:`send_file` is the resumable loop that acts on the server's refusals (docks.tus's typed
errors) as the protocol table says: 409 offset mismatch and 423 busy ask HEAD and go on from
there, 429 waits as Retry-After says, 460 checksum mismatch sends the chunk again, a lost
connection is retried with backoff and resumed from HEAD. A 460 digest mismatch, 401/403 and
413 end the loop: the agent decides.

:class:`Backoff` paces the retries after a lost connection; :class:`TokenBucket` is the
agent's bandwidth cap (``--limit-rate``, read by :func:`parse_rate`), shared by every upload
thread and applied by the client piece by piece.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from docks.tus import (
    PIECE_BYTES,
    ChunkMismatch,
    DockClient,
    DockError,
    OffsetMismatch,
    TooManyUploads,
    Unreachable,
    UploadBusy,
)

# ------------------------------------------------------------------------------- pacing


def parse_rate(text: str) -> int:
    """``--limit-rate``: bytes per second, with K, M or G (1024-based, as curl's option)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    cleaned = text.strip().upper().removesuffix("/S").removesuffix("B")
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned[-1:] in ("K", "M", "G") else (cleaned, "")
    try:
        value = float(number) * units[unit]
    except (ValueError, KeyError):
        raise ValueError(f"not a rate: {text!r} (e.g. 500K, 20M, 1G bytes per second)") from None
    if not value >= 1:
        raise ValueError(f"not a rate: {text!r} (at least 1 byte per second)")
    return int(value)


class TokenBucket:
    """The agent's bandwidth cap, shared by every worker: ``rate`` bytes per second with a
    burst of ``burst`` bytes. A caller reserves what it is about to send and is told how long
    to wait first (the balance may go negative: later callers queue behind it, so the
    long-run rate holds however many threads send)."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate)
        # A quarter second of rate, and never less than one piece: a piece must fit.
        self.burst = float(burst if burst is not None else max(rate / 4, PIECE_BYTES))
        self._clock, self._sleep = clock, sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self, n: int) -> float:
        """Take ``n`` bytes' worth; the seconds to wait before sending them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def take(self, n: int) -> None:
        wait = self.reserve(n)
        if wait > 0:
            self._sleep(wait)


@dataclass
class Backoff:
    """Waits after a lost connection: ``first_s``, doubling up to ``max_s``; ``attempts``
    in a row before the fault is the caller's."""

    first_s: float = 1.0
    max_s: float = 60.0
    attempts: int = 8
    sleep: Callable[[float], None] = time.sleep

    def delay(self, failures: int) -> float:
        return min(self.max_s, self.first_s * 2 ** max(0, failures - 1))

    def wait(self, failures: int) -> None:
        self.sleep(self.delay(failures))


# ------------------------------------------------------------------ the resumable loop


@dataclass
class Transfer:
    """What sending one upload cost: ``high`` is the furthest byte ever sent for it (kept
    in the state file), so bytes sent again below it are counted as ``resent``."""

    high: int = 0
    sent: int = 0
    resent: int = 0
    faults: list[str] = field(default_factory=list)


def send_file(
    client: DockClient,
    url: str,
    read_at: Callable[[int, int], bytes],
    size: int,
    *,
    chunk_bytes: int,
    backoff: Backoff,
    transfer: Transfer | None = None,
    offset: int | None = None,
    on_sent: Callable[[int], None] | None = None,
    on_offset: Callable[[int], None] | None = None,
    stopped: Callable[[], bool] = lambda: False,
    subject: str = "",
) -> Transfer:
    """PATCH ``url`` from the server's offset (HEAD, unless ``offset`` is known) to ``size``,
    chunk by chunk. ``read_at(offset, n)`` gives the file's bytes; ``on_sent(n)`` follows
    every piece that went out, ``on_offset(offset)`` every offset the server stated (progress
    and the state file). Returns when the server's offset is ``size``, or early once
    ``stopped()``. Raises DigestMismatch, UploadGone, UploadTooLarge, AuthRefused, and
    Unreachable once ``backoff.attempts`` faults came in a row."""
    done = transfer or Transfer()
    failures = 0

    def fault(what: str) -> None:
        nonlocal failures
        failures += 1
        done.faults.append(what)
        if failures > backoff.attempts:
            raise Unreachable(f"{subject}: {failures} faults in a row, the last: {what}")
        backoff.wait(failures)

    def head() -> int:
        while True:
            try:
                found = client.offset(url, subject=subject)
            except (Unreachable, UploadBusy) as exc:
                fault(str(exc))
                continue
            except TooManyUploads as exc:
                backoff.sleep(exc.retry_after)
                continue
            if on_offset is not None:
                on_offset(found)
            return found

    position = head() if offset is None else offset
    while position < size and not stopped():
        length = min(chunk_bytes, size - position)
        chunk = read_at(position, length)
        if len(chunk) != length:
            raise DockError(f"{subject}: 文件变短 the file is shorter than {size} bytes now")
        cursor = position

        def piece(n: int) -> None:
            nonlocal cursor
            done.sent += n
            done.resent += max(0, min(cursor + n, done.high) - cursor)
            cursor += n
            done.high = max(done.high, cursor)
            if on_sent is not None:
                on_sent(n)

        try:
            position = client.patch(url, position, chunk, on_piece=piece, subject=subject)
        except OffsetMismatch:
            position = head()
            continue
        except UploadBusy as exc:
            fault(str(exc))
            position = head()
            continue
        except TooManyUploads as exc:
            backoff.sleep(exc.retry_after)
            continue
        except ChunkMismatch as exc:
            fault(str(exc))  # damaged on the way: the same chunk again
            continue
        except Unreachable as exc:
            fault(str(exc))
            position = head()
            continue
        failures = 0
        if on_offset is not None:
            on_offset(position)
    return done

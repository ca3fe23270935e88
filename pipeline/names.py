"""Names as a filesystem gives them: bytes. A FAT card written in a legacy encoding (GBK on
Chinese recorders) gives names that are not UTF-8; the bytes are kept (to open the file
again) beside a readable form (to show and search it)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath

#: Encodings tried, in order, to show a name that is not UTF-8 (settings may name others).
DEFAULT_ENCODINGS: tuple[str, ...] = ("gbk",)


def readable(path: PurePath | str | bytes, encodings: Sequence[str] = DEFAULT_ENCODINGS) -> str:
    """The path as text a person can read and the catalog can store: each component as
    UTF-8 if it is, else in the first legacy encoding that decodes it, else with the
    undecodable bytes written as ``\\xNN``."""
    raw = os.fsencode(path)
    return "/".join(_readable_part(part, encodings) for part in raw.split(b"/"))


def _readable_part(part: bytes, encodings: Sequence[str]) -> str:
    try:
        return part.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for encoding in encodings:
        try:
            return part.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return part.decode("utf-8", "backslashreplace")


def raw_name(path: PurePath | str) -> bytes | None:
    """The path's bytes when its text form is not the same name (not valid UTF-8), else None:
    what a job must keep to open the file again."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def from_raw(text: str, raw: bytes | None) -> Path:
    """The real path of a catalogued source: its bytes when they were kept, else its text."""
    return Path(os.fsdecode(raw)) if raw is not None else Path(text)

"""Identifiers that come from recorders, file names and people: serials, officer numbers,
certificate numbers. They end up in folder names, search terms, terminals and columns of 64
characters, so one rule decides which are usable, wherever they come from."""

from __future__ import annotations

import unicodedata

MAX_ID_LENGTH = 64  # the catalog's columns (PostgreSQL refuses longer)


def identifier_problem(value: str) -> str | None:
    """What is wrong with an identifier, or None. Refused: control and format characters
    (NUL, escapes, bidirectional overrides), path separators, a leading '.', spaces around
    it, the double quote (the query language cannot hold it), more than 64 characters."""
    if not value:
        return "the identifier is empty"
    if len(value) > MAX_ID_LENGTH:
        return f"an identifier cannot be longer than {MAX_ID_LENGTH} characters"
    for char in value:
        if unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp"):
            return f"an identifier cannot hold the control character U+{ord(char):04X}"
        if char in '/\\"':
            return f"an identifier cannot hold {char!r}"
    if value.startswith("."):
        return "an identifier cannot start with '.'"
    if value != value.strip():
        return "an identifier cannot start or end with a space"
    return None

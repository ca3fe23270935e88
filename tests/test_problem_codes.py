"""Every problem code the checks can report is explained in docs/problems.md, and the
table names no code the checks no longer report."""

from __future__ import annotations

import re

from tests.conftest import REPO

CODE = re.compile(r"E-[A-Z]+(?:-[A-Z]+)*")


def test_the_table_of_problem_codes_matches_the_code() -> None:
    in_code = {
        code
        for path in (REPO / "pipeline").rglob("*.py")
        for code in re.findall(r'"(E-[A-Z]+(?:-[A-Z]+)*)"', path.read_text(encoding="utf-8"))
    }
    documented = set(CODE.findall((REPO / "docs/problems.md").read_text(encoding="utf-8")))
    assert in_code, "the checks report their problems with string codes"
    assert sorted(in_code - documented) == [], "reported but not explained"
    assert sorted(documented - in_code) == [], "explained but never reported"

"""The grader against a table of hand-graded model answers (tests/unit/grading_cases.py).

Every case must agree: a careful reader of Azerbaijani marks each answer right or wrong, and so
must :func:`steps.core.evaluate.grading.grader.grade`. The table's size and the grader's pass count
are printed by ``pytest -s`` and kept in docs/evaluation.md, with the old grader's disagreements.
"""

from __future__ import annotations

from collections import Counter

import pytest
from grading_cases import CASES

from steps.core.data.examples import parse_target
from steps.core.evaluate.grading.grader import grade


@pytest.mark.parametrize(
    ("family", "target", "reference", "output", "right"),
    CASES,
    ids=[f"{i:03d}-{case[0]}" for i, case in enumerate(CASES, start=1)],
)
def test_graded_like_a_careful_reader(
    family: str, target: dict, reference: str, output: str, right: bool
) -> None:
    result = grade(output, parse_target(target), reference)
    assert result.correct is right, (output, result.verdict, result.read, result.why)
    assert result.why  # every grade says why


def test_the_table_is_large_and_balanced() -> None:
    assert len(CASES) >= 120
    rights = sum(case[-1] for case in CASES)
    assert 0.35 < rights / len(CASES) < 0.75  # both kinds of mistake can show
    families = Counter(case[0] for case in CASES)
    assert len(families) == 14 and min(families.values()) >= 2
    kinds = Counter(case[1]["kind"] for case in CASES)
    assert set(kinds) == {"number", "entity", "comparison"}


def test_pass_count() -> None:
    agree = sum(
        grade(output, parse_target(target), reference).correct is right
        for _, target, reference, output, right in CASES
    )
    print(f"\ngrading table: {agree} of {len(CASES)} cases graded as a careful reader does")
    assert agree == len(CASES)

"""The grader's parts: Azerbaijani folding, numbers as people write them, the answer in an
output, strict accuracy, and every shipped example graded against its own target."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from steps.core.data.examples import EntityTarget, NumberTarget, read_examples
from steps.core.evaluate.grading.az_text import fold, numbers, words
from steps.core.evaluate.grading.grader import answer_text, grade, target_from_reference

DATA = Path(__file__).resolve().parents[2] / "data" / "nizami.jsonl"
WELL_FORMED = "<think>12 - 5 = 7.</think>\n\n<answer>Səbətdə 7 alma qaldı.</answer>"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("İSTANBUL", "istanbul"),  # dotted capital İ -> i, not i + U+0307
        ("ISPARTA", "ısparta"),  # dotless capital I -> ı
        ("ƏLİ", "əli"),
        ("Ǝli", "əli"),  # U+018E, a look-alike of Ə
        ("L\u04d9nk\u04d9ran", "lənkəran"),  # Cyrillic ә (U+04D9)
        ("\u04d8li", "əli"),  # Cyrillic Ә (U+04D8)
        ("I\u0307zmir", "izmir"),  # decomposed İ is composed first
    ],
)
def test_azerbaijani_folding(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("7,5 km", ["7.5"]),
        ("7.5", ["7.5"]),
        ("28 000 metr", ["28000"]),  # a plain space groups thousands
        ("28\u00a0000", ["28000"]),
        ("28.000", ["28000"]),  # so does a dot before three digits
        ("1.500.000", ["1500000"]),
        ("saat 14:00-da", ["14"]),
        ("14:30", ["14.5"]),
        ("1/2", ["0.5"]),
        ("−5 dərəcə", ["-5"]),
        ("mənfi 5", ["-5"]),
        ("yeddi", ["7"]),
        ("on iki", ["12"]),
        ("iki yüz otuz beş", ["235"]),
        ("min iki yüz", ["1200"]),
        ("iyirmi səkkiz min", ["28000"]),
        ("yarım saat", ["0.5"]),
        ("iki yarım", ["2.5"]),
        ("2 saat yarım", ["2.5"]),
        ("807-dən", ["807"]),
        ("üçün onu ona", []),  # "for", "him", "to him": not numbers
        ("heç nə", []),
    ],
)
def test_numbers_as_azerbaijani_writes_them(text: str, values: list[str]) -> None:
    assert numbers(text) == [Decimal(v) for v in values]


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        (WELL_FORMED, "Səbətdə 7 alma qaldı."),
        ("<think>x</think><answer> 7 ", "7"),  # unclosed answer: still an answer (not strict)
        ("<think>12 - 5 = 7", None),  # never closed: no answer
        ("<think>12 - 5 = 7</think>\n\nSəbətdə 7 alma", None),  # no <answer> after thinking
        ("Səbətdə 7 alma qaldı.", "Səbətdə 7 alma qaldı."),  # no tags at all: read whole
        ("<answer>7</answer><answer>8</answer>", "7 yaxud 8"),  # two answers: alternatives
    ],
)
def test_answer_text(output: str, answer: str | None) -> None:
    assert answer_text(output) == answer


def test_strict_accuracy_needs_the_format_too() -> None:
    target = NumberTarget(kind="number", value=7, unit="alma")
    assert grade(WELL_FORMED, target).strict
    loose = grade("Səbətdə 7 alma qaldı.", target)
    assert loose.correct and not loose.strict
    unclosed = grade("<think>x</think><answer>7", target)
    assert unclosed.correct and not unclosed.strict
    no_answer = grade("<think>12 - 5 = 7", target)
    assert (no_answer.correct, no_answer.verdict) == (False, "no answer")


def test_every_shipped_reference_is_right_and_a_changed_answer_is_wrong() -> None:
    examples = read_examples(DATA)
    values: dict[str, set[str]] = {}
    for e in examples:
        if isinstance(e.target, EntityTarget):
            values.setdefault(e.target.type, set()).add(e.target.value)
    for e in examples:
        output = f"<think>{e.reasoning}</think>\n\n<answer>{e.answer}</answer>"
        result = grade(output, e.target)
        assert result.correct and result.strict, (e.id, result.why)
        assert grade(e.answer, e.target).correct, e.id  # no tags: read whole
        if isinstance(e.target, NumberTarget):
            assert not grade(f"Cavab: {e.target.value + 1}", e.target).correct, e.id
        elif isinstance(e.target, EntityTarget):
            for other in values[e.target.type] - {e.target.value, *e.target.given}:
                assert not grade(other, e.target).correct, (e.id, other)
        else:
            loser = next(o for o in e.target.options if o != e.target.who)
            assert not grade(e.answer.replace(e.target.who, loser), e.target).correct, e.id


def test_without_a_target_the_reference_decides() -> None:
    assert target_from_reference("Qalıq 7 manatdır.") == NumberTarget(
        kind="number", value=7, unit="manat"
    )
    assert grade("700 qəpik", None, "Qalıq 7 manatdır.").correct
    assert not grade("8", None, "Qalıq 7 manatdır.").correct
    assert grade("Məncə, ən ağır Turaldır", None, "Ən ağır Turaldır.").correct
    assert not grade("Ən ağır Murad", None, "Ən ağır Turaldır.").correct
    assert words("Ən ağır 7,0 KQ") == ["ən", "ağır", "7", "kq"]

"""Answer accuracy: Azerbaijani normalization, numbers as numbers, units, word answers."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from steps.core.answers import answer_kind, casefold_az, is_correct, normalize, numbers
from steps.core.examples import read_examples

DATA = Path(__file__).resolve().parents[2] / "data" / "nizami.jsonl"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("İSTANBUL", "istanbul"),  # dotted capital İ -> i, not i + U+0307
        ("ISPARTA", "ısparta"),  # dotless capital I -> ı
        ("IĞDIR İLİ", "ığdır ili"),
        ("ƏLİ", "əli"),
        ("Ǝli", "əli"),  # U+018E, a look-alike of Ə, folds to ə
        ("I\u0307zmir", "izmir"),  # decomposed İ (I + combining dot) is composed first
    ],
)
def test_azerbaijani_casefolding(text: str, folded: str) -> None:
    assert casefold_az(text) == folded
    assert "\u0307" not in casefold_az(text)


def test_plain_lower_would_get_the_dotted_i_wrong() -> None:
    assert "İLKİN".lower() != "ilkin"  # why casefold_az exists
    assert normalize("İLKİN") == normalize("ilkin") == "ilkin"
    assert normalize("ILIQ") == "ılıq" != normalize("iliq")


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("7", [Decimal(7)]),
        ("7.0 manat", [Decimal(7)]),
        ("7,0", [Decimal(7)]),
        ("Qiymət 7,50 AZN-dir", [Decimal("7.5")]),
        ("2,5 və 2.5", [Decimal("2.5"), Decimal("2.5")]),
        ("28\u00a0000 metr", [Decimal(28000)]),  # no-break space groups thousands
        ("−5 dərəcə", [Decimal(-5)]),
        ("saat 14-də", [Decimal(14)]),
        ("3-5", [Decimal(3), Decimal(5)]),
        ("heç nə", []),
    ],
)
def test_numbers_are_read_as_numbers(text: str, values: list[Decimal]) -> None:
    assert numbers(text) == values


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("7", "Qalıq 7 manatdır."),
        ("7.0", "Qalıq 7 manatdır."),
        ("7,0 manat", "Qalıq 7 manatdır."),
        ("7 AZN", "Qalıq 7 manatdır."),
        ("Cavab: 7 ₼", "Qalıq 7 manatdır."),
        ("7,5 km", "Məsafə 7.5 km-dir."),
        ("Yol 3 saat çəkdi", "Yol 3 saat çəkdi."),
        ("iclas saat 14-də bitir", "İclas saat 14-də bitir."),
        ("Əvvəl 5 idi, sonra 3 əlavə olundu: 8", "İndi Əlinin 8 alması var."),
        ("40%", "Sinifdə 40%-i qızdır: 40"),
    ],
)
def test_right_numeric_answers(prediction: str, reference: str) -> None:
    assert answer_kind(reference) == "number"
    assert is_correct(prediction, reference)


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("17", "Qalıq 7 manatdır."),  # shares the digit, not the number
        ("70 qəpik", "Qalıq 7 manatdır."),
        ("7,5", "Qalıq 7 manatdır."),
        ("Qalıq yeddi manatdır.", "Qalıq 7 manatdır."),  # numbers in words are not read
        ("", "Qalıq 7 manatdır."),
        ("8, yox, 9", "İndi Əlinin 8 alması var."),  # the last number is the answer
    ],
)
def test_wrong_numeric_answers(prediction: str, reference: str) -> None:
    assert not is_correct(prediction, reference)


@pytest.mark.parametrize(
    ("prediction", "reference", "right"),
    [
        ("3 gün sonra cümə olacaq", "3 gün sonra cümə olacaq.", True),
        ("3 GÜN SONRA CÜMƏ OLACAQ!", "3 gün sonra cümə olacaq.", True),
        ("Məncə, 3 gün sonra cümə olacaq.", "3 gün sonra cümə olacaq.", True),
        ("Cümə", "3 gün sonra cümə olacaq.", False),  # the whole reference must be said
        ("3 gün sonra cümə axşamı olacaq.", "3 gün sonra cümə olacaq.", False),
        ("3 gün sonra bazar olacaq.", "3 gün sonra cümə olacaq.", False),
        ("Ən ağır Turaldır", "Ən ağır Turaldır.", True),
        ("Ən ağır Tural.", "Ən ağır Turaldır.", True),  # the copula does not count
        ("Ən ağır Muraddır.", "Ən ağır Turaldır.", False),
        ("Sahil  şəhəri ,  LƏNKƏRANDIR", "Sahil şəhəri Lənkərandır.", True),
        ("Sahil şəhəri Şəkidir.", "Sahil şəhəri Lənkərandır.", False),
    ],
)
def test_word_answers_must_contain_the_normalized_reference(
    prediction: str, reference: str, right: bool
) -> None:
    family = "calendar" if "gün" in reference else "ordering"
    assert is_correct(prediction, reference, family) is right


def test_calendar_answers_are_words_although_they_repeat_a_number() -> None:
    reference = "3 gün sonra cümə olacaq."
    assert answer_kind(reference) == "number"  # without the family, the number would decide
    assert answer_kind(reference, "calendar") == "word"
    assert not is_correct("3 gün sonra bazar olacaq.", reference, "calendar")


def test_every_shipped_reference_is_right_and_a_changed_answer_is_wrong() -> None:
    examples = read_examples(DATA)
    for example in examples:
        assert is_correct(example.answer, example.answer, example.family), example.id
        if answer_kind(example.answer, example.family) == "number":
            last = numbers(example.answer)[-1]
            assert not is_correct(f"{last + 1}", example.answer, example.family), example.id
            assert is_correct(f"Cavab: {last}", example.answer, example.family), example.id
    words = [e for e in examples if answer_kind(e.answer, e.family) == "word"]
    assert {e.family for e in words} == {"calendar", "ordering", "geography"}
    others = {e.answer for e in words}
    wrong = sum(
        is_correct(other, e.answer, e.family) for e in words[:20] for other in others
        if normalize(other) != normalize(e.answer)
    )
    assert wrong == 0

"""Is a final answer right? Azerbaijani-aware normalization and answer matching.

The held-out answers are short sentences ("Qalıq 7 manatdır.", "3 gün sonra cümə olacaq.",
"Sahil şəhəri Lənkərandır."). BLEU or chrF against such a sentence says little about whether the
answer is right ("17" and "7" share most of their characters), so evaluation also grades each
answer as right or wrong:

- **numeric answers** (every family whose reference answer contains a number, except the ones in
  :data:`WORD_ANSWER_FAMILIES`): right when the prediction's *last* number equals the
  reference's last number, compared as numbers ("7" = "7.0" = "7,0"); the words around it,
  a unit or currency after it ("7 manat", "7 AZN") and a suffix glued to it ("14-də") do not
  count. This is the GSM8K convention, with Azerbaijani number writing.
- **word answers** (a weekday, a month, a person, a city): right when the normalized reference
  appears in the normalized prediction as a run of whole words ("Məncə, 3 gün sonra cümə olacaq"
  is right for "3 gün sonra cümə olacaq."; "… cümə axşamı olacaq" is not).

Normalization (:func:`normalize`): Unicode NFC; Azerbaijani casing (``I`` → ``ı``, ``İ`` → ``i``,
the look-alike ``Ǝ``/``ǝ`` → ``ə``); numbers canonical (comma or dot as the decimal separator,
a no-break or thin space as the thousands separator); punctuation dropped, whitespace collapsed;
unit and currency words right after a number dropped; a copula ending (-dır, -dir, -dur, -dür,
-tır, …) dropped from words of five letters or more, so "Ən ağır Turaldır" = "ən ağır Tural".

Known limits: a number written in words ("yeddi") is not read as a number; a plain space is not
a thousands separator ("28 000" is two numbers; "28 000" with a no-break space is one); in the
``comparison`` family only the difference is checked, not whose it is.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Literal

AnswerKind = Literal["number", "word"]

# Families whose answer is a word although the answer sentence repeats a number from the
# question ("3 gün sonra cümə olacaq."): graded as words. ``ordering`` and ``geography`` have no
# number in their answers, so they would be graded as words anyway; listed to say so.
WORD_ANSWER_FAMILIES = frozenset({"calendar", "ordering", "geography"})

_CASE = str.maketrans({"I": "ı", "İ": "i"})
_LOOKALIKE = str.maketrans({"ǝ": "ə"})  # U+01DD (from U+018E) for U+0259
_GROUP_SPACE = "\u00a0\u202f\u2009"  # no-break, narrow no-break, thin space
_NUMBER = re.compile(
    rf"(?<![\w.,])(?P<sign>[-−])?(?P<int>\d{{1,3}}(?:[{_GROUP_SPACE}]\d{{3}})+|\d+)"
    rf"(?:[.,](?P<frac>\d+))?(?![\d])"
)
# A suffix written onto a number: "14-də", "5-ci", "40%-i", "25'i".
_NUMBER_SUFFIX = re.compile(r"%?[-'’][^\W\d_]+")
_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|[%₼$€]")

# Units and currencies (lowercase, Azerbaijani casing); a word counts as one when it is a stem
# plus at most one ending from _ENDINGS ("manatdır", "metrdir", "saata", "ədədi").
UNITS = frozenset(
    "manat qəpik azn ₼ $ € dollar avro rubl lirə "
    "km kilometr m metr sm santimetr mm millimetr kvadrat kub "
    "kq kiloqram q qram ton l litr ml millilitr "
    "saat dəqiqə saniyə gün həftə ay il əsr "
    "dərəcə faiz % dənə ədəd nəfər".split()
)
_ENDINGS = frozenset(
    "a ə ya yə ı i u ü da də ta tə dan dən tan tən ın in un ün "
    "dır dir dur dür tır tir tur tür la lə lıq lik luq lük dı di du dü".split()
)
_COPULA = ("dır", "dir", "dur", "dür", "tır", "tir", "tur", "tür")


def casefold_az(text: str) -> str:
    """Lowercase ``text`` the Azerbaijani way (``I`` → ``ı``, ``İ`` → ``i``), after NFC.

    ``str.lower()`` alone maps ``I`` to ``i`` and ``İ`` to ``i`` + U+0307.
    """
    return unicodedata.normalize("NFC", text).translate(_CASE).lower().translate(_LOOKALIKE)


def _canonical(match: re.Match[str]) -> str:
    digits = re.sub(f"[{_GROUP_SPACE}]", "", match["int"])
    text = f"{'-' if match['sign'] else ''}{digits}.{match['frac'] or '0'}"
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets digits through
        return match[0]
    value = value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()
    return format(value, "f")


def numbers(text: str) -> list[Decimal]:
    """Every number in ``text``, in order, as a ``Decimal`` ("7,5" and "7.5" are both 7.5)."""
    return [Decimal(_canonical(m)) for m in _NUMBER.finditer(unicodedata.normalize("NFC", text))]


def _is_unit(word: str) -> bool:
    base = word.split("-")[0].split("'")[0].split("’")[0]
    if base in UNITS:
        return True
    return any(base.startswith(u) and base[len(u) :] in _ENDINGS for u in UNITS if len(u) > 1)


def _strip_copula(word: str) -> str:
    for ending in _COPULA:
        if word.endswith(ending) and len(word) >= len(ending) + 3:  # "bitir" stays a verb
            return word[: -len(ending)]
    return word


def tokens(text: str) -> list[str]:
    """The normalized tokens of ``text`` (see the module docstring); numbers in canonical form."""
    text = casefold_az(text)
    out: list[str] = []
    after_number = False
    position = 0
    while position < len(text):
        number = _NUMBER.match(text, position)
        if number:
            out.append(_canonical(number))
            position = number.end()
            suffix = _NUMBER_SUFFIX.match(text, position)
            if suffix:  # "14-də" -> 14; "40%-i" -> 40
                position = suffix.end()
            after_number = True
            continue
        word = _WORD.match(text, position)
        if word:
            position = word.end()
            if not (after_number and _is_unit(word[0])):
                out.append(word[0])
                after_number = False
            continue
        if not text[position].isspace():
            after_number = False  # punctuation ends a quantity: "7, manat" keeps "manat"
        position += 1
    return [_strip_copula(token) for token in out]


def normalize(text: str) -> str:
    """``text`` normalized for comparison: the :func:`tokens` joined by single spaces."""
    return " ".join(tokens(text))


def answer_kind(reference: str, family: str | None = None) -> AnswerKind:
    """How an answer to this reference is graded: by its number or by its words."""
    if family in WORD_ANSWER_FAMILIES or not numbers(reference):
        return "word"
    return "number"


def is_correct(prediction: str, reference: str, family: str | None = None) -> bool:
    """Whether ``prediction`` gives the same final answer as ``reference``.

    Args:
        prediction: The model's final answer (the text inside ``<answer>``, or its whole output).
        reference: The reference answer.
        family: The example's task family, if the data records it.

    Returns:
        For a numeric answer, whether the last numbers are equal; for a word answer, whether the
        normalized reference is a run of whole words of the normalized prediction.
    """
    if answer_kind(reference, family) == "number":
        predicted = numbers(prediction)
        return bool(predicted) and predicted[-1] == numbers(reference)[-1]
    said, expected = tokens(prediction), tokens(reference)
    if not expected:
        return not said
    width = len(expected)
    return any(said[i : i + width] == expected for i in range(len(said) - width + 1))

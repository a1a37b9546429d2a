"""Which number an Azerbaijani answer asserts, and which numbers in it are only context.

The rules (see :mod:`steps.core.evaluate.grading.grader` for the whole grader): numbers in
parentheses, operands of arithmetic (only the result after ``=`` counts), numbers in the ablative,
locative or genitive (on the number or on the noun after it; a clock time ``saat 14-də`` is not
context), ordinals, range ends (``19-a qədər``), time spans from the question (``3 gün sonra``),
restatements after ``yəni``, earlier states after ``əvvəl``, numbers negated with ``deyil``/``yox``
and numbers in a ``çünki`` clause after the answer are skipped. Two numbers joined by ``və
ya``/``yaxud``/a dash are offered as alternatives.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from steps.core.evaluate.grading.az_text import (
    ABLATIVE,
    GENITIVE,
    LOCATIVE,
    ORDINAL,
    Token,
    read,
    split_ending,
)

# unit -> (dimension, factor to the dimension's base unit)
UNIT_FACTORS: dict[str, tuple[str, Decimal]] = {
    "manat": ("money", Decimal(1)), "azn": ("money", Decimal(1)), "₼": ("money", Decimal(1)),
    "qəpik": ("money", Decimal("0.01")),
    "km": ("length", Decimal(1000)), "kilometr": ("length", Decimal(1000)),
    "m": ("length", Decimal(1)), "metr": ("length", Decimal(1)),
    "sm": ("length", Decimal("0.01")), "santimetr": ("length", Decimal("0.01")),
    "mm": ("length", Decimal("0.001")), "millimetr": ("length", Decimal("0.001")),
    "saat": ("time", Decimal(3600)), "dəqiqə": ("time", Decimal(60)),
    "saniyə": ("time", Decimal(1)), "gün": ("time", Decimal(86400)),
    "həftə": ("time", Decimal(604800)),
    "kq": ("mass", Decimal(1000)), "kiloqram": ("mass", Decimal(1000)),
    "q": ("mass", Decimal(1)), "qram": ("mass", Decimal(1)), "ton": ("mass", Decimal(10**6)),
    "l": ("volume", Decimal(1000)), "litr": ("volume", Decimal(1000)),
    "ml": ("volume", Decimal(1)), "millilitr": ("volume", Decimal(1)),
    "il": ("years", Decimal(12)), "ay": ("years", Decimal(1)),
}  # fmt: skip
_NEGATORS = ("deyil", "yox", "yoxdur")
_DISJUNCTIONS = ("yaxud", "ya", "yoxsa", "və ya")
_RESTATE = ("yəni",)
_EARLIER = ("əvvəl", "əvvəlcə", "öncə")
_RANGE_ENDS = ("qədər", "dək", "kimi")
_TIME_NOUNS = ("gün", "ay", "il", "həftə", "saat", "dəqiqə")
_RELATIVE = ("sonra", "əvvəl", "ərzində", "öncə")


class Reading(BaseModel):
    """One number an answer asserts."""

    value: Decimal
    unit: str | None
    text: str
    strong: int = 0  # 1: after "Cavab:"


def _unit_of(tokens: list[Token], i: int) -> tuple[str | None, str, int]:
    """The measure unit after the number at ``i`` (None if none), the ending written on the
    word after it, and the index of that word."""
    j = i + 1
    if j >= len(tokens) or tokens[j].kind != "word":
        return None, "", i
    word = tokens[j].text
    if split_ending(word, "kvadrat") is not None and j + 1 < len(tokens):
        unit, ending, k = _unit_of(tokens, j)
        return (None if unit is None else f"kvadrat {unit}"), ending, k
    for unit in sorted(UNIT_FACTORS, key=len, reverse=True):
        ending = split_ending(word, unit)
        if ending is not None:
            return unit, ending, j
    base = word.split("-")[0]
    return None, word[len(base) :].lstrip("-'’") if "-" in word else _ending_guess(word), j


def _ending_guess(word: str) -> str:
    """The case ending a noun of unknown stem seems to end in ("" if none is clear)."""
    for ending in sorted(ABLATIVE | LOCATIVE | {"nın", "nin", "nun", "nün"}, key=len, reverse=True):
        if word.endswith(ending) and len(word) > len(ending) + 2:
            return ending
    return ""


def _clause_after(tokens: list[Token], j: int, width: int = 3) -> list[Token]:
    out = []
    for token in tokens[j + 1 : j + 1 + width]:
        if token.kind == "punct" and token.text in ".;!?":
            break
        out.append(token)
    return out


def _negated(tokens: list[Token], j: int) -> bool:
    """Whether a negator (deyil, yox) follows position ``j`` within its clause."""
    for token in _clause_after(tokens, j):
        if token.kind == "number":
            return False
        if token.kind == "word" and (token.text.startswith("deyil") or token.text in _NEGATORS):
            return True
    return False


def _context(tokens: list[Token], i: int, depth: int) -> str | None:
    """Why the number at ``i`` is context rather than the asserted answer (None if it is not)."""
    token = tokens[i]
    before = tokens[i - 1] if i else None
    after = tokens[i + 1] if i + 1 < len(tokens) else None
    if depth > 0:
        return "in parentheses"
    if after is not None and after.kind == "op" and after.text != "/":
        return "an operand"
    if after is not None and after.kind == "op" and i + 2 < len(tokens):
        return "an operand"
    if before is not None and before.kind == "op" and before.text not in "=":
        return "an operand"
    clock = before is not None and before.text == "saat" or token.form == "time"
    unit, ending, j = _unit_of(tokens, i)
    suffix = token.suffix or ending
    if suffix in ORDINAL:
        return "an ordinal"
    if suffix in ABLATIVE:
        return "in the ablative (compared with)"
    if suffix in LOCATIVE and not clock:
        return "in the locative (where/when)"
    if suffix in GENITIVE or suffix in ("nın", "nin", "nun", "nün"):
        return "in the genitive"
    nxt = tokens[j + 1] if j + 1 < len(tokens) else None
    if nxt is not None and nxt.kind == "word" and nxt.text in _RANGE_ENDS:
        return "the end of a range"
    if after is not None and after.kind == "word" and after.text in _TIME_NOUNS:
        if nxt is not None and nxt.text in _RELATIVE:
            return "a time span from the question"
    previous = [t for t in tokens[max(0, i - 2) : i] if t.kind == "word"]
    if previous and previous[-1].text in _RESTATE:
        return "a restatement (yəni)"
    if previous and previous[-1].text in _EARLIER:
        return "an earlier state (əvvəl)"
    return None


def read_numbers(text: str) -> tuple[list[Reading], list[str], bool]:
    """The numbers ``text`` asserts, the notes on the ones it does not, and whether two
    numbers are offered as alternatives (``7 və ya 8``, ``7-8``)."""
    tokens = read(text)
    asserted: list[Reading] = []
    notes: list[str] = []
    depth, after_answer, alternatives = 0, False, False
    because = next((i for i, t in enumerate(tokens) if t.text in ("çünki", "çünkü")), None)
    weak: list[Reading] = []
    for i, token in enumerate(tokens):
        if token.kind == "open":
            depth += 1
        elif token.kind == "close":
            depth = max(0, depth - 1)
        elif token.kind == "word" and token.text == "cavab":
            after_answer = True
        if token.kind != "number" or token.value is None:
            continue
        unit, _, j = _unit_of(tokens, i)
        shown = token.text + (f" {unit}" if unit else "")
        reason = _context(tokens, i, depth)
        if reason is None and _negated(tokens, j):
            reason = "negated"
        if reason is not None:
            notes.append(f"{shown}: {reason}")
            continue
        if because is not None and i > because and (asserted or weak):
            notes.append(f"{shown}: in the explanation (çünki)")
            continue
        strong = 1 if after_answer else 0
        reading = Reading(value=token.value, unit=unit, text=shown, strong=strong)
        (weak if token.weak else asserted).append(reading)
        if asserted and len(asserted) >= 2 and token is not None:
            between = _between(tokens, asserted, i)
            alternatives = alternatives or between
    return (asserted or weak), notes, alternatives


def _between(tokens: list[Token], asserted: list[Reading], i: int) -> bool:
    """Whether the words just before the number at ``i`` offer it as an alternative."""
    window = [t.text for t in tokens[max(0, i - 3) : i]]
    joined = " ".join(window)
    dash = i >= 2 and tokens[i - 1].text in ("-", "–", "/") and tokens[i - 2].kind == "number"
    return dash or any(f" {d} " in f" {joined} " for d in _DISJUNCTIONS)


def in_unit(value: Decimal, unit: str | None, target_unit: str | None) -> Decimal | None:
    """``value`` in ``target_unit`` (None if the units are of different kinds)."""
    if unit is None or target_unit is None or unit == target_unit:
        return value
    area = unit.startswith("kvadrat ") and target_unit.startswith("kvadrat ")
    a, b = unit.removeprefix("kvadrat "), target_unit.removeprefix("kvadrat ")
    if a not in UNIT_FACTORS or b not in UNIT_FACTORS:
        return value  # a counted thing ("alma"), not a measure: the number decides
    if unit.startswith("kvadrat ") != target_unit.startswith("kvadrat "):
        return None
    (kind_a, fa), (kind_b, fb) = UNIT_FACTORS[a], UNIT_FACTORS[b]
    if kind_a != kind_b:
        return None
    ratio = fa / fb
    return value * (ratio * ratio if area else ratio)


def same_unit(a: str, b: str) -> bool:
    """Whether two unit words name the same unit ("m" and "metr", "AZN" and "manat")."""
    a, b = a.removeprefix("kvadrat "), b.removeprefix("kvadrat ")
    return a == b or (a in UNIT_FACTORS and UNIT_FACTORS.get(a) == UNIT_FACTORS.get(b))

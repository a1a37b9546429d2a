"""Is a final answer right? Read the answer the way a careful reader of Azerbaijani does and compare
what it *asserts* with the example's target (what the answer is, from the data).

- **No answer, no credit.** An output that opens ``<think>`` and never closes it, or closes it
  and gives no ``<answer>``, has no answer. An output without any tag (a base model that was not
  taught the format) is read whole. :func:`grade` reports ``strict`` too: right *and*
  well-formed (``<think>…</think>`` then ``<answer>…</answer>``).
- **Numbers** (:class:`~steps.core.data.examples.NumberTarget`): the number the answer asserts, not
  blindly the last one. Numbers that are context are skipped: in parentheses (``36 manat
  (48 − 12)``), operands of arithmetic (``48 − 12 = 36``: only the result counts), ablatives
  (``769 ədədi 807-dən kiçikdir``), locatives and genitives (``9 qutuda``, ``600 ədədinin``,
  except clock times ``saat 14-də``), ordinals (``5-ci``), range ends (``19-a qədər``),
  restatements after ``yəni`` (``7 manat, yəni 700 qəpik``: 7 manat is the answer), numbers
  negated with ``deyil``/``yox``, numbers in a ``çünki`` (because) clause after the answer. Of the
  rest, one after ``Cavab:`` wins, else the last (Azerbaijani puts the predicate last). Two
  different numbers joined by ``və ya``/``yaxud``/a dash are a hedge: wrong. A unit that can be
  converted counts (``700 qəpik`` = 7 manat, ``180 dəqiqə`` = 3 saat); a unit of another kind is
  wrong (``4 km`` for 4 hours). How numbers are written: :mod:`steps.core.evaluate.grading.az_text`.
- **Entities** (:class:`~steps.core.data.examples.EntityTarget`: weekday, month, person, city…): the
  names of that type the answer asserts, longest first (``cümə axşamı`` is not ``cümə``), with any
  ending (``Lənkərandır``, ``Qubanın``). Not asserted: a name negated with ``deyil``/``yox``
  (``Lənkəran deyil, Qubadır`` asserts Quba), in the ablative (``cümədən 2 gün sonra``), or what
  the question states as known (today's weekday). More than one name asserted is a hedge, unless
  exactly one is the predicate (``Ən hündür Turaldır, sonra Nigar``).
- **Comparisons** (:class:`~steps.core.data.examples.ComparisonTarget`): *who* (the person before
  the comparative: ``Nigarın alması 21 dənə çoxdur``; the other one with ``az``/``alçaq``) and *how
  much* (a number, as above); both must be right.

An example without a target (data from before targets) is graded against the number its
reference answer asserts, else by the reference's words appearing in the answer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from steps.core.data.examples import (
    ComparisonTarget,
    EntityTarget,
    NumberTarget,
    Target,
    has_valid_format,
)
from steps.core.evaluate.grading.asserted_numbers import in_unit, read_numbers, same_unit
from steps.core.evaluate.grading.az_text import ABLATIVE, COPULA, fold, read, words
from steps.core.evaluate.grading.entities import (
    COMPARATIVES,
    INVERSE_COMPARATIVES,
    find_entities,
    vocabulary,
)

Verdict = Literal["right", "wrong", "no answer", "hedge"]


class Grade(BaseModel):
    """How one answer was graded."""

    correct: bool
    strict: bool  # correct and well-formed
    verdict: Verdict
    read: str | None  # what the grader read as the answer ("7 manat", "cümə", "Nigar, 21 sm")
    why: str


def answer_text(output: str) -> str | None:
    """The answer in a model output: the text of ``<answer>`` (to ``</answer>`` or the end; two
    different answer blocks are read as alternatives); None when ``<think>`` is never closed or
    no ``<answer>`` follows a think block; an output with no tags at all is its own answer."""
    if "<think>" in output and "</think>" not in output:
        return None
    if "<answer>" in output:  # several answer blocks are alternatives
        blocks = [b.split("</answer>", 1)[0].strip() for b in output.split("<answer>")[1:]]
        return " yaxud ".join(dict.fromkeys(b for b in blocks if b))
    if "</think>" in output:
        return None
    return output.strip()


def _number_verdict(
    text: str, value: Decimal, unit: str | None, convertible: bool = True
) -> tuple[Verdict, str, str]:
    asserted, notes, alternatives = read_numbers(text)
    skipped = f" (skipped: {'; '.join(notes)})" if notes else ""
    if not asserted:
        return "wrong", "", f"asserts no number{skipped}"
    if alternatives and len({in_unit(a.value, a.unit, unit) for a in asserted}) > 1:
        shown = " / ".join(a.text for a in asserted)
        return "hedge", shown, f"offers alternatives: {shown}"
    best = max(a.strong for a in asserted)  # after "Cavab:", else the last one
    chosen = [a for a in asserted if a.strong == best][-1]
    converted = in_unit(chosen.value, chosen.unit, unit)
    target = f"{_show(value)}{f' {unit}' if unit else ''}"
    if not convertible and chosen.unit and unit and not same_unit(chosen.unit, unit):
        return "wrong", chosen.text, f"reads {chosen.text}: the question asks in {unit}"
    if converted is None:
        return "wrong", chosen.text, f"reads {chosen.text}: a unit of another kind than {target}"
    if abs(converted - value) <= Decimal("1e-9") * max(Decimal(1), abs(value)):
        return "right", chosen.text, f"reads {chosen.text} = target {target}{skipped}"
    return "wrong", chosen.text, f"reads {chosen.text} ≠ target {target}{skipped}"


def _show(value: Decimal | int | float) -> str:
    return format(Decimal(str(value)).normalize(), "f")


# ------------------------------------------------------------------------------------ entities


def _entity_verdict(text: str, target: EntityTarget) -> tuple[Verdict, str, str]:
    names = vocabulary(target.type, [target.value, *target.options])
    given = {fold(g) for g in target.given}
    found = find_entities(read(text), names)
    asserted, notes = [], []
    for mention in found:
        if mention.name in given:
            notes.append(f"{mention.name}: given in the question")
        elif mention.ending in ABLATIVE:
            notes.append(f"{mention.name}: in the ablative")
        elif mention.negated:
            notes.append(f"{mention.name}: negated")
        elif mention.explanation and found[0].index < mention.index and not found[0].explanation:
            notes.append(f"{mention.name}: in the explanation (çünki)")
        else:
            asserted.append(mention)
    skipped = f" (skipped: {'; '.join(notes)})" if notes else ""
    distinct = list(dict.fromkeys(m.name for m in asserted))
    if not distinct:
        return "wrong", "", f"names no {target.type}{skipped}"
    if len(distinct) > 1:
        predicates = list(dict.fromkeys(m.name for m in asserted if m.ending in _COPULA_FORMS))
        if any(m.alternative for m in asserted) or len(predicates) != 1:
            return "hedge", ", ".join(distinct), f"names several: {', '.join(distinct)}"
        distinct = predicates
    said, want = distinct[0], fold(target.value)
    verdict: Verdict = "right" if said == want else "wrong"
    sign = "=" if said == want else "≠"
    return verdict, said, f"reads {said} {sign} target {want}{skipped}"


_COPULA_FORMS = COPULA | {c + d for c in ("da", "də", "ta", "tə") for d in COPULA}


def _comparison_verdict(text: str, target: ComparisonTarget) -> tuple[Verdict, str, str]:
    tokens = read(text)
    names = vocabulary("person", [target.who, *target.options])
    mentions = [
        m for m in find_entities(tokens, names)
        if m.ending not in ABLATIVE and not m.negated and not m.before_ablative
    ]  # fmt: skip
    comparative = [
        (i, t.text) for i, t in enumerate(tokens)
        if t.kind == "word" and any(t.text.startswith(c) for c in COMPARATIVES)
    ]  # fmt: skip
    who_text = ", ".join(dict.fromkeys(m.name for m in mentions))
    if any(m.alternative for m in mentions) and len({m.name for m in mentions}) > 1:
        return "hedge", who_text, f"names several: {who_text}"
    if comparative:
        at, word = comparative[-1]
        before = [m for m in mentions if m.index < at] or [m for m in mentions if m.index > at]
        who = (
            before[-1].name
            if before and mentions[-1].index < at
            else (before[0].name if before else None)
        )
        if who is not None and any(word.startswith(c) for c in INVERSE_COMPARATIVES):
            others = [fold(o) for o in target.options if fold(o) != who]
            who = others[0] if len(others) == 1 else None
    else:
        who = mentions[-1].name if len({m.name for m in mentions}) == 1 else None
    want = fold(target.who)
    number, read_by, why_by = _number_verdict(text, Decimal(str(target.by)), target.unit)
    shown = f"{who or '?'}, {read_by or '?'}"
    if who is None:
        return "wrong", shown, f"does not say who (named: {who_text or 'nobody'})"
    if who != want:
        return "wrong", shown, f"reads {who} ≠ target {want}"
    if number != "right":
        return ("hedge" if number == "hedge" else "wrong"), shown, f"who is right; {why_by}"
    return "right", shown, f"reads {who} = target {want}; {why_by}"


# ------------------------------------------------------------------------------------- grading


def grade(output: str, target: Target | None, reference: str = "") -> Grade:
    """Grade one model output against the example's target.

    Args:
        output: The model's whole output (``<think>…</think>\\n\\n<answer>…</answer>``, or plain
            text for a model without the format).
        target: What the answer is (from the data), or None for data without targets.
        reference: The reference answer sentence (used only when there is no target).
    """
    text = answer_text(output)
    if text is None or not text.strip():
        why = ("no answer: <think> is never closed" if "<think>" in output
               and "</think>" not in output else "no answer: no <answer> after the think block"
               if text is None else "no answer: the answer is empty")  # fmt: skip
        return Grade(correct=False, strict=False, verdict="no answer", read=None, why=why)
    if target is None:
        target = target_from_reference(reference)
    if target is None:
        said, expected = words(text), words(reference)
        width = len(expected)
        hit = any(said[i : i + width] == expected for i in range(len(said) - width + 1))
        verdict: Verdict = "right" if hit and expected else "wrong"
        why = "the reference's words appear in the answer" if hit else "reference not found"
        return Grade(correct=hit and bool(expected), strict=hit and has_valid_format(output),
                     verdict=verdict, read=text, why=why)  # fmt: skip
    if isinstance(target, NumberTarget):
        value = Decimal(str(target.value))
        verdict, said, why = _number_verdict(text, value, target.unit, target.convertible)
    elif isinstance(target, EntityTarget):
        verdict, said, why = _entity_verdict(text, target)
    else:
        verdict, said, why = _comparison_verdict(text, target)
    correct = verdict == "right"
    return Grade(correct=correct, strict=correct and has_valid_format(output), verdict=verdict,
                 read=said or None, why=why)  # fmt: skip


def target_from_reference(reference: str) -> NumberTarget | None:
    """A number target read from a reference answer sentence (None if it asserts no number)."""
    asserted, _, _ = read_numbers(reference)
    if not asserted:
        return None
    best = max(a.strong for a in asserted)
    chosen = [a for a in asserted if a.strong == best][-1]
    value = chosen.value
    number = int(value) if value == value.to_integral_value() else float(value)
    return NumberTarget(kind="number", value=number, unit=chosen.unit)


def is_correct(prediction: str, target: Target | None, reference: str = "") -> bool:
    """Whether ``prediction`` (a model output) is right for ``target``; see :func:`grade`."""
    return grade(prediction, target, reference).correct


def describe(target: Target | None) -> str:
    """A target as the report shows it: ``7 manat``, ``weekday cümə``, ``Nigar +21 dənə``."""
    if target is None:
        return "(no target: graded against the reference)"
    if isinstance(target, NumberTarget):
        return f"{_show(target.value)}{f' {target.unit}' if target.unit else ''}"
    if isinstance(target, EntityTarget):
        return f"{target.type} {target.value}"
    return f"{target.who} +{_show(target.by)}{f' {target.unit}' if target.unit else ''}"

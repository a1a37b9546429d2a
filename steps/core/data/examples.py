"""The example schema: strict JSONL validation, a deterministic split and the assistant format.

Every line of the dataset is one JSON object ``{"id", "question", "reasoning", "answer",
"target"}``, optionally with ``"family"`` (the task family, e.g. ``"addition"``; evaluation
reports accuracy per family and the split is stratified by it). ``target`` says what the answer
*is*, so that grading never has to guess it from the answer sentence (:class:`Target`): a number
with its unit, a named thing (weekday, month, person, city…), or who has more and by how much.
Validation is all-or-nothing:
every line is checked, every problem is collected, and one :class:`DataValidationError` lists
them as ``<path>:<line>: <problem>`` so that a user can fix the file without reading a
traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

FIELDS = ("id", "question", "reasoning", "answer")
REQUIRED_OBJECTS = ("target",)
OPTIONAL_FIELDS = ("family",)
ASSISTANT_TEMPLATE = "<think>{reasoning}</think>\n\n<answer>{answer}</answer>"
MAX_LISTED_ERRORS = 20

_ANSWER_OPEN, _ANSWER_CLOSE = "<answer>", "</answer>"
_THINK_CLOSE = "</think>"
# Text that contains none of the four tags.
_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"
_VALID_FORMAT = re.compile(
    rf"\s*<think>{_NO_TAG}</think>\s*<answer>(?P<answer>{_NO_TAG})</answer>\s*", re.DOTALL
)


class _TargetBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NumberTarget(_TargetBase):
    """The answer is a number: ``{"kind": "number", "value": 7, "unit": "manat"}``."""

    kind: Literal["number"]
    value: int | float
    unit: str | None = Field(None, min_length=1, description="unit or counted thing, if any")
    convertible: bool = Field(
        True,
        description="an answer in another unit of the same kind counts (700 qəpik for 7 manat); "
        "false where the question asks for the conversion itself",
    )


class EntityTarget(_TargetBase):
    """The answer names one thing: ``{"kind": "entity", "type": "weekday", "value": "cümə"}``."""

    kind: Literal["entity"]
    type: str = Field(min_length=1, description="weekday, month, person, city, river, sea…")
    value: str = Field(min_length=1)
    options: tuple[str, ...] = Field(
        (), strict=False, description="the candidates the question offers"
    )
    given: tuple[str, ...] = Field(
        (), strict=False, description="what the question states as known"
    )


class ComparisonTarget(_TargetBase):
    """Who has more, and by how much: ``{"kind": "comparison", "who": "Nigar", "by": 21}``."""

    kind: Literal["comparison"]
    who: str = Field(min_length=1)
    by: int | float
    unit: str | None = Field(None, min_length=1)
    options: tuple[str, ...] = Field((), strict=False, description="the people (things) compared")


Target = Annotated[NumberTarget | EntityTarget | ComparisonTarget, Field(discriminator="kind")]
_TARGET = TypeAdapter(Target)


def parse_target(value: Any) -> Target:
    """A target from its JSON form (raises pydantic's ``ValidationError``)."""
    return _TARGET.validate_python(value)


class Example(BaseModel):
    """One chain-of-thought example (``target`` is required in data files, see
    :func:`read_examples`; examples built in code may leave it out)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    question: str
    reasoning: str
    answer: str
    family: str | None = None
    target: Target | None = None


class DataValidationError(ValueError):
    """The data file has problems; ``errors`` lists each as ``<path>:<line>: <problem>``."""

    def __init__(self, errors: Sequence[str]) -> None:
        """Build the message from the first :data:`MAX_LISTED_ERRORS` problems.

        Args:
            errors: Every problem found, each formatted as ``<path>:<line>: <problem>``.
        """
        self.errors = list(errors)
        shown = self.errors[:MAX_LISTED_ERRORS]
        lines = [f"{len(self.errors)} problem(s) in the data:", *(f"  {e}" for e in shown)]
        if len(self.errors) > len(shown):
            lines.append(f"  ... and {len(self.errors) - len(shown)} more")
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[type[DataValidationError], tuple[list[str]]]:
        """Keep ``errors`` when the exception is pickled (e.g. sent back from a worker)."""
        return type(self), (self.errors,)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_record(record: Any) -> list[str]:
    """Return the problems of one decoded JSON value (without location)."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {_type_name(record)}"]
    problems = []
    for field in FIELDS:
        if field not in record:
            problems.append(f"field '{field}' is missing")
        elif not isinstance(record[field], str):
            problems.append(f"field '{field}' must be a string, got {_type_name(record[field])}")
        elif not record[field].strip():
            problems.append(f"field '{field}' is empty")
    for field in OPTIONAL_FIELDS:
        if field not in record:
            continue
        if not isinstance(record[field], str):
            problems.append(f"field '{field}' must be a string, got {_type_name(record[field])}")
        elif not record[field].strip():
            problems.append(f"field '{field}' is empty")
    for field in REQUIRED_OBJECTS:
        if field not in record:
            problems.append(
                f"field '{field}' is missing (what the answer is; data/generate.py writes it)"
            )
        else:
            problems += _target_problems(record[field], field)
    known = FIELDS + OPTIONAL_FIELDS + REQUIRED_OBJECTS
    problems += [f"unknown field '{key}'" for key in record if key not in known]
    return problems


def _target_problems(value: Any, field: str) -> list[str]:
    """What is wrong with a ``target`` value, each naming the field (``target.value``)."""
    if not isinstance(value, dict):
        return [f"field '{field}' must be an object, got {_type_name(value)}"]
    kinds = ("number", "entity", "comparison")
    if value.get("kind") not in kinds:
        return [
            f"field '{field}.kind' must be one of {', '.join(kinds)}, got {value.get('kind')!r}"
        ]
    try:
        parse_target(value)
    except ValidationError as e:
        problems: list[str] = []
        for error in e.errors():
            loc = [str(p) for p in error["loc"][1:] if p not in ("int", "float")]
            where = ".".join([field, *loc])
            message = "must be a number" if error["loc"][-1] in ("int", "float") else error["msg"]
            if f"field '{where}': {message}" not in problems:
                problems.append(f"field '{where}': {message}")
        return problems
    return []


def read_examples(path: Path) -> list[Example]:
    """Read and validate a JSONL file of examples, all or nothing.

    Blank lines are skipped (they still count for line numbers). Every line is checked before
    anything is returned, so one run reports every problem in the file.

    Args:
        path: The JSONL file, UTF-8 encoded.

    Returns:
        The examples in file order.

    Raises:
        DataValidationError: If any line is invalid or the file holds no example; its ``errors``
            name each problem as ``<path>:<line>: <problem>``.
        FileNotFoundError: If ``path`` does not exist.
    """
    path = Path(path)
    raw = path.read_bytes()
    errors: list[str] = []
    examples: list[Example] = []
    first_seen: dict[str, int] = {}

    for lineno, raw_line in enumerate(raw.split(b"\n"), start=1):
        if lineno == 1 and raw_line.startswith(b"\xef\xbb\xbf"):
            raw_line = raw_line[3:]  # UTF-8 byte order mark
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as e:
            errors.append(f"{path}:{lineno}: invalid UTF-8: {e.reason} (byte {e.start + 1})")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})")
            continue
        problems = _check_record(record)
        example_id = record.get("id") if isinstance(record, dict) else None
        if isinstance(example_id, str) and example_id.strip():
            if example_id in first_seen:
                problems.append(
                    f"duplicate id '{example_id}' (first seen on line {first_seen[example_id]})"
                )
            else:
                first_seen[example_id] = lineno
        if problems:
            errors += [f"{path}:{lineno}: {problem}" for problem in problems]
            continue
        examples.append(Example(**(record | {"target": parse_target(record["target"])})))

    if not examples and not errors:
        errors.append(f"{path}:1: no examples (the file is empty)")
    if errors:
        raise DataValidationError(errors)
    log.info("read %d examples from %s", len(examples), path)
    return examples


def _split_key(example: Example, seed: int) -> tuple[str, str, str, str, str]:
    digest = hashlib.sha256(f"{seed}:{example.id}".encode()).hexdigest()
    return digest, example.id, example.question, example.reasoning, example.answer


def _per_family(examples: Sequence[Example], held_out: int) -> dict[str | None, int]:
    """How many of each family to hold out: proportional to its size, the remainders going to
    the largest fractions (ties by family name), so the counts add up to ``held_out``."""
    sizes: dict[str | None, int] = {}
    for example in examples:
        sizes[example.family] = sizes.get(example.family, 0) + 1
    exact = {f: held_out * n / len(examples) for f, n in sizes.items()}
    counts = {f: int(x) for f, x in exact.items()}
    by_fraction = sorted(exact, key=lambda f: (-(exact[f] - counts[f]), str(f)))
    for family in by_fraction[: held_out - sum(counts.values())]:
        counts[family] += 1
    return counts


def split_examples(
    examples: Sequence[Example], held_out: int, seed: int, stratify: bool = False
) -> tuple[list[Example], list[Example]]:
    """Split examples into training and held-out sets, deterministically.

    Examples are ordered by ``sha256(f"{seed}:{id}")`` and the first ``held_out`` are held out,
    so the split depends only on the ids and the seed, not on the order of ``examples``. With
    ``stratify`` the first ones *of each family* are held out, as many per family as its share
    of the data (the held-out set then has every family in proportion).

    Args:
        examples: The examples to split (ids are expected to be unique).
        held_out: How many examples to hold out for evaluation.
        seed: Changes which examples are held out.
        stratify: Hold out each family in proportion to its size.

    Returns:
        ``(train, held_out)``, both in the hashed order.

    Raises:
        ValueError: If ``held_out`` is below 1 or leaves no training example.
    """
    if held_out < 1:
        raise ValueError(f"held_out must be at least 1, got {held_out}")
    if held_out >= len(examples):
        raise ValueError(
            f"held_out={held_out} leaves no training example: there are only {len(examples)} "
            f"examples; use held_out <= {len(examples) - 1} or add data"
        )
    ordered = sorted(examples, key=lambda example: _split_key(example, seed))
    if not stratify:
        return ordered[held_out:], ordered[:held_out]
    quota = _per_family(ordered, held_out)
    train, kept = [], []
    for example in ordered:
        if quota[example.family] > 0:
            quota[example.family] -= 1
            kept.append(example)
        else:
            train.append(example)
    return train, kept


def assistant_text(example: Example) -> str:
    """Return the assistant turn of ``example`` in the :data:`ASSISTANT_TEMPLATE` format."""
    return ASSISTANT_TEMPLATE.format(reasoning=example.reasoning, answer=example.answer)


def messages(example: Example, with_answer: bool = True) -> list[dict[str, str]]:
    """Return the chat messages for an example.

    Args:
        example: The example.
        with_answer: Include the assistant turn (training); leave it out for a generation prompt.

    Returns:
        ``[{"role": "user", ...}, {"role": "assistant", ...}]``, the latter only if
        ``with_answer``.
    """
    turns = [{"role": "user", "content": example.question}]
    if with_answer:
        turns.append({"role": "assistant", "content": assistant_text(example)})
    return turns


def extract_answer(text: str) -> str:
    """Return the final answer in a model output.

    Args:
        text: A generated assistant turn.

    Returns:
        The stripped text inside the last ``<answer>...</answer>`` (everything after the last
        ``<answer>`` if it is not closed); else the stripped text after the last ``</think>``;
        else the whole stripped text.
    """
    start = text.rfind(_ANSWER_OPEN)
    if start >= 0:
        rest = text[start + len(_ANSWER_OPEN) :]
        end = rest.find(_ANSWER_CLOSE)
        return (rest if end < 0 else rest[:end]).strip()
    think_end = text.rfind(_THINK_CLOSE)
    if think_end >= 0:
        return text[think_end + len(_THINK_CLOSE) :].strip()
    return text.strip()


def has_valid_format(text: str) -> bool:
    """Return whether ``text`` is exactly a think block followed by a non-empty answer block.

    Whitespace around and between the blocks is allowed; other text, nested or repeated tags
    and a blank answer are not.
    """
    match = _VALID_FORMAT.fullmatch(text)
    return match is not None and bool(match.group("answer").strip())

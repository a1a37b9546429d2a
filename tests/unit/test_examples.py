"""Tests for the shipped dataset, its generator and ``steps.core.data.examples``."""

from __future__ import annotations

import ast
import json
import operator
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from steps.core.data.examples import (
    DataValidationError,
    Example,
    assistant_text,
    extract_answer,
    has_valid_format,
    messages,
    read_examples,
    split_examples,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "nizami.jsonl"
GENERATOR = ROOT / "data" / "generate.py"
AZ_LETTERS = set("əğıöüçşİ")


def _record(i: int = 1, **overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": f"az-{i:04d}",
        "question": f"Sual {i}?",
        "reasoning": f"{i} + 1 = {i + 1}.",
        "answer": f"Cavab {i + 1}-dir.",
        "target": {"kind": "number", "value": i + 1},
    }
    record.update(overrides)
    return record


def _line(record: object) -> str:
    return json.dumps(record, ensure_ascii=False)


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(DataValidationError) as info:
        read_examples(path)
    assert str(info.value).count("\n") >= 1
    for error in info.value.errors:
        assert error in str(info.value)
    return info.value.errors


def _examples(n: int) -> list[Example]:
    return [Example(**(_record(i) | {"target": None})) for i in range(1, n + 1)]


# ----------------------------------------------------------------------------- shipped data


def test_shipped_data_is_valid_and_azerbaijani() -> None:
    examples = read_examples(DATA)
    assert len(examples) >= 300
    ids = [e.id for e in examples]
    assert len(set(ids)) == len(ids)
    assert ids == [f"az-{i:04d}" for i in range(1, len(ids) + 1)]
    assert len({e.question for e in examples}) == len(examples)
    text = " ".join(e.question + e.reasoning + e.answer for e in examples)
    assert set(text) >= AZ_LETTERS
    for example in examples:
        assert has_valid_format(assistant_text(example))
        assert len(example.question.split()) <= 30
        assert len(example.answer.split()) <= 12


EQUATION = re.compile(r"((?:\(?\d+\)?\s*[-+×/]\s*)+\(?\d+\)?)\s*=\s*(\d+)")


OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(node: ast.expr) -> int:
    """Evaluate integer + - × / exactly; a division must leave no remainder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    assert isinstance(node, ast.BinOp), ast.dump(node)
    left, right = _evaluate(node.left), _evaluate(node.right)
    if isinstance(node.op, ast.Div):
        assert left % right == 0, f"{left} / {right} is not whole"
        return left // right
    return OPERATORS[type(node.op)](left, right)


def test_shipped_data_records_the_task_family_of_every_example() -> None:
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        from generate import FAMILIES, GEOGRAPHY
    finally:
        sys.path.remove(str(GENERATOR.parent))
    families = [e.family for e in read_examples(DATA)]
    assert set(families) == {*FAMILIES, GEOGRAPHY}
    counts = {f: families.count(f) for f in set(families)}
    assert max(counts.values()) - min(counts.values()) <= 1  # split evenly by the generator


def test_a_file_without_family_still_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, [_line(_record(1)), _line(_record(2, family="addition"))])
    assert [e.family for e in read_examples(path)] == [None, "addition"]


def test_a_file_without_targets_is_rejected_naming_line_and_field(tmp_path: Path) -> None:
    no_target = {k: v for k, v in _record(1).items() if k != "target"}
    path = _write(
        tmp_path,
        [
            _line(no_target),
            _line(_record(2, target={"kind": "number", "value": "7"})),
            _line(_record(3, target={"kind": "entity", "type": "city"})),
            _line(_record(4, target={"kind": "guess", "value": 1})),
            _line(_record(5, target=[7])),
            _line(_record(6, target={"kind": "comparison", "who": "Nigar", "by": 3, "x": 1})),
        ],
    )
    assert _errors(path) == [
        f"{path}:1: field 'target' is missing (what the answer is; data/generate.py writes it)",
        f"{path}:2: field 'target.value': must be a number",
        f"{path}:3: field 'target.value': Field required",
        f"{path}:4: field 'target.kind' must be one of number, entity, comparison, got 'guess'",
        f"{path}:5: field 'target' must be an object, got list",
        f"{path}:6: field 'target.x': Extra inputs are not permitted",
    ]


def test_shipped_targets_say_what_the_answer_sentence_says() -> None:
    kinds = set()
    for example in read_examples(DATA):
        target, answer = example.target, example.answer
        assert target is not None, example.id
        kinds.add((example.family, target.kind))
        if target.kind == "number":
            assert str(target.value) in answer, example.id
        elif target.kind == "comparison":
            assert target.who in answer and str(target.by) in answer, example.id
            assert target.who in target.options and len(target.options) == 2, example.id
        else:
            assert target.value.split()[0].lower() in answer.lower(), example.id
            assert not target.options or target.value in target.options, example.id
            assert target.value not in target.given, example.id
    assert ("calendar", "entity") in kinds and ("geography", "entity") in kinds
    assert ("comparison", "comparison") in kinds and ("money", "number") in kinds


def test_stratified_split_holds_out_every_family_in_proportion() -> None:
    examples = read_examples(DATA)
    families = {e.family for e in examples}
    train, held_out = split_examples(examples, held_out=308, seed=0, stratify=True)
    counts = {f: sum(e.family == f for e in held_out) for f in families}
    assert len(held_out) == 308 and len(families) == 14
    assert set(counts.values()) == {22}
    small_train, small = split_examples(examples, held_out=50, seed=0, stratify=True)
    small_counts = [sum(e.family == f for e in small) for f in families]
    assert len(small) == 50 and min(small_counts) == 3 and max(small_counts) == 4
    assert not {e.id for e in train} & {e.id for e in held_out}
    # the unstratified split (the seed's) is what it was: the first ones in hashed order
    plain = split_examples(examples, held_out=50, seed=0)[1]
    assert [e.id for e in plain] != [e.id for e in small]


def test_shipped_reasoning_arithmetic_is_correct() -> None:
    checked = 0
    for example in read_examples(DATA):
        for expression, result in EQUATION.findall(example.reasoning):
            value = _evaluate(ast.parse(expression.replace("×", "*"), mode="eval").body)
            assert value == int(result), (example.id, expression, result)
            checked += 1
    assert checked >= 250


def test_shipped_data_keeps_letters_unescaped() -> None:
    raw = DATA.read_text(encoding="utf-8")
    assert "\\u" not in raw  # written with ensure_ascii=False
    assert raw.endswith("\n")


def _generate(out: Path, *args: str) -> bytes:
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), *args],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return out.read_bytes()


def test_generator_is_deterministic_and_reproduces_shipped_file(tmp_path: Path) -> None:
    first = _generate(tmp_path / "a.jsonl", "--n", "1120", "--seed", "0")
    second = _generate(tmp_path / "b.jsonl", "--n", "1120", "--seed", "0")
    assert first == second
    assert first == DATA.read_bytes()
    other_seed = _generate(tmp_path / "c.jsonl", "--n", "360", "--seed", "1")
    assert other_seed != first
    assert len(read_examples(tmp_path / "c.jsonl")) == 360


# ----------------------------------------------------------------------------- validation


def test_reads_valid_file_in_order_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, [_line(_record(2)), "", "   ", _line(_record(1))])
    examples = read_examples(path)
    assert [e.id for e in examples] == ["az-0002", "az-0001"]
    assert examples[1] == Example(**_record(1))


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, [_line(_record(1)), "", '{"id": "az-0003" "question": "x"}'])
    assert _errors(path) == [
        f"{path}:3: invalid JSON: Expecting ',' delimiter (column 18)",
    ]


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({k: v for k, v in _record(1).items() if k != "question"}, "field 'question' is missing"),
        (_record(1, answer=""), "field 'answer' is empty"),
        (_record(1, answer=" \t "), "field 'answer' is empty"),
        (_record(1, id=7), "field 'id' must be a string, got int"),
        (_record(1, reasoning=None), "field 'reasoning' must be a string, got null"),
        (_record(1, extra="x"), "unknown field 'extra'"),
        (_record(1, family=3), "field 'family' must be a string, got int"),
        (_record(1, family=None), "field 'family' must be a string, got null"),
        (_record(1, family=" "), "field 'family' is empty"),
        ([1, 2], "expected a JSON object, got list"),
        ("text", "expected a JSON object, got str"),
    ],
)
def test_malformed_line_is_reported_with_location(
    tmp_path: Path, record: object, problem: str
) -> None:
    path = _write(tmp_path, [_line(_record(2)), _line(_record(3)), _line(record)])
    assert _errors(path) == [f"{path}:3: {problem}"]


def test_duplicate_id_names_first_line(tmp_path: Path) -> None:
    lines = [_line(_record(i)) for i in range(1, 5)] + [_line(_record(3, question="Başqa?"))]
    path = _write(tmp_path, lines)
    assert _errors(path) == [f"{path}:5: duplicate id 'az-0003' (first seen on line 3)"]


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    errors = _errors(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:1: ")
    assert "empty" in errors[0]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = _line(_record(1)).encode()
    bad = _line(_record(2, answer="Şəki")).encode("utf-8").replace("ə".encode(), b"\xe9")
    path.write_bytes(good + b"\n" + bad + b"\n")
    errors = _errors(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:2: invalid UTF-8")


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    lines = [
        _line(_record(1)),
        "not json",
        _line(_record(3, answer="")),
        _line({"id": "az-0001", "question": 5, "extra": True}),
    ]
    path = _write(tmp_path, lines)
    errors = _errors(path)
    assert errors == [
        f"{path}:2: invalid JSON: Expecting value (column 1)",
        f"{path}:3: field 'answer' is empty",
        f"{path}:4: field 'question' must be a string, got int",
        f"{path}:4: field 'reasoning' is missing",
        f"{path}:4: field 'answer' is missing",
        f"{path}:4: field 'target' is missing (what the answer is; data/generate.py writes it)",
        f"{path}:4: unknown field 'extra'",
        f"{path}:4: duplicate id 'az-0001' (first seen on line 1)",
    ]


def test_long_error_list_is_truncated_in_message(tmp_path: Path) -> None:
    path = _write(tmp_path, ["[]"] * 25)
    with pytest.raises(DataValidationError) as info:
        read_examples(path)
    assert len(info.value.errors) == 25
    message = str(info.value)
    assert f"{path}:20: expected a JSON object" in message
    assert f"{path}:21:" not in message
    assert "... and 5 more" in message
    assert isinstance(info.value, ValueError)


def test_error_survives_pickling() -> None:
    error = DataValidationError(["a.jsonl:1: field 'id' is missing"])
    restored = pickle.loads(pickle.dumps(error))
    assert restored.errors == error.errors
    assert str(restored) == str(error)


def test_example_is_strict_and_frozen() -> None:
    with pytest.raises(ValidationError):
        Example(**_record(1, id=1))
    with pytest.raises(ValidationError):
        Example(**_record(1, extra="x"))
    example = Example(**_record(1))
    with pytest.raises(ValidationError):
        example.answer = "x"  # type: ignore[misc]


# ----------------------------------------------------------------------------- split


def test_split_sizes_and_disjoint() -> None:
    examples = _examples(40)
    train, held_out = split_examples(examples, held_out=7, seed=0)
    assert len(train) == 33
    assert len(held_out) == 7
    assert not {e.id for e in train} & {e.id for e in held_out}
    assert {e.id for e in train} | {e.id for e in held_out} == {e.id for e in examples}


def test_split_is_deterministic_and_order_independent() -> None:
    examples = _examples(40)
    shuffled = examples[:]
    random.Random(3).shuffle(shuffled)
    assert split_examples(examples, 7, seed=0) == split_examples(examples, 7, seed=0)
    assert split_examples(shuffled, 7, seed=0) == split_examples(examples, 7, seed=0)
    other = split_examples(examples, 7, seed=1)[1]
    assert {e.id for e in other} != {e.id for e in split_examples(examples, 7, seed=0)[1]}


def test_split_of_shipped_data_holds_out_50() -> None:
    train, held_out = split_examples(read_examples(DATA), held_out=50, seed=0)
    assert len(held_out) == 50
    assert len(train) >= 250


@pytest.mark.parametrize(("size", "held_out"), [(10, 0), (10, -1), (10, 10), (10, 11), (1, 1)])
def test_split_rejects_bad_held_out(size: int, held_out: int) -> None:
    with pytest.raises(ValueError, match="held_out"):
        split_examples(_examples(size), held_out=held_out, seed=0)


# ----------------------------------------------------------------------------- format


def test_assistant_text_and_messages() -> None:
    example = Example(id="az-1", question="2 + 2 neçədir?", reasoning="2 + 2 = 4.", answer="4.")
    assert assistant_text(example) == "<think>2 + 2 = 4.</think>\n\n<answer>4.</answer>"
    assert messages(example) == [
        {"role": "user", "content": "2 + 2 neçədir?"},
        {"role": "assistant", "content": assistant_text(example)},
    ]
    assert messages(example, with_answer=False) == [{"role": "user", "content": "2 + 2 neçədir?"}]
    assert extract_answer(assistant_text(example)) == "4."


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("<think>a</think>\n\n<answer> Bakıdır. </answer>", "Bakıdır."),
        ("<answer>birinci</answer> <answer>ikinci</answer>", "ikinci"),
        ("<think>a</think><answer>bağlanmayıb ", "bağlanmayıb"),
        ("<think>a</think>  sonra gələn mətn ", "sonra gələn mətn"),
        ("<think>x</think>a</think> b", "b"),
        ("  sadəcə cavab  ", "sadəcə cavab"),
        ("", ""),
    ],
)
def test_extract_answer(text: str, answer: str) -> None:
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("<think>12 - 5 = 7.</think>\n\n<answer>7 alma qaldı.</answer>", True),
        ("  <think></think><answer>7</answer>\n", True),
        ("<think>a</think>", False),
        ("<answer>7</answer>", False),
        ("<answer>7</answer><think>a</think>", False),
        ("<think>a</think><answer>  </answer>", False),
        ("<think>a</think><answer>7", False),
        ("giriş <think>a</think><answer>7</answer>", False),
        ("<think>a</think><answer>7</answer><answer>8</answer>", False),
        ("<think>a<think>b</think><answer>7</answer>", False),
    ],
)
def test_has_valid_format(text: str, valid: bool) -> None:
    assert has_valid_format(text) is valid

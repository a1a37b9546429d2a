"""Batched greedy generation and the held-out evaluation report on the tiny model."""

from __future__ import annotations

import json

import pytest

from steps.core.config import EvalConfig
from steps.core.data.dataset import ChatExample
from steps.core.evaluate.compare import (
    FIGURES,
    SCORED,
    EvalReport,
    ExampleResult,
    Generation,
    build_report,
    evaluate_models,
    generation_dtype,
    publish_metrics,
)
from steps.core.evaluate.generation import generate, generate_ids
from steps.core.evaluate.metrics_document import MetricsDocument
from steps.core.evaluate.report import render_html
from steps.core.modeling import load_model, load_tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ROWS = 8


class ScriptedModel:
    """Stands in for a causal LM: echoes each prompt's last token, then a scripted tail."""

    def __init__(self, tail: list[int]) -> None:
        import torch

        self.device = torch.device("cpu")
        self.tail = tail
        self.calls: list[dict] = []

    def eval(self) -> ScriptedModel:
        return self

    def generate(self, input_ids, attention_mask, **kwargs):
        import torch

        self.calls.append({"input_ids": input_ids, "attention_mask": attention_mask, **kwargs})
        new = [[int(row[-1]), *self.tail] for row in input_ids]
        return torch.cat([input_ids, torch.tensor(new, dtype=input_ids.dtype)], dim=1)


@pytest.fixture(scope="module")
def tokenizer(tiny_base_dir):
    return load_tokenizer(tiny_base_dir)


@pytest.fixture(scope="module")
def rows(tiny_split):
    return tiny_split.held_out[:ROWS]


@pytest.fixture(scope="module")
def report(tiny_base_dir, tiny_adapter, rows, tiny_split, one_torch_thread) -> EvalReport:
    cfg = EvalConfig(batch_size=4, max_new_tokens=12, max_examples=ROWS)
    return evaluate_models(tiny_base_dir, tiny_adapter.adapter_dir, rows, cfg,
                           data_hash=tiny_split.data_hash, model_revision="nizami-1.7b-tiny@v3")


@pytest.fixture(scope="module")
def document(report) -> MetricsDocument:
    return report.document()


@pytest.fixture(scope="module")
def lively_model(tiny_base_dir):
    """The tiny model with larger random weights.

    Its own init (std 0.02) answers every prompt with the same token, which would make any
    two generations equal; with std 0.1 the continuation depends on the whole prompt.
    """
    import torch

    model = load_model(tiny_base_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.1)
    return model


def test_batched_generation_equals_one_by_one(lively_model, tokenizer, rows) -> None:
    prompts = [r.prompt for r in rows]
    assert len({len(tokenizer(p)["input_ids"]) for p in prompts}) > 1  # padding is exercised

    batched = generate_ids(lively_model, tokenizer, prompts, batch_size=8, max_new_tokens=10)
    single = generate_ids(lively_model, tokenizer, prompts, batch_size=1, max_new_tokens=10)
    uneven = generate(lively_model, tokenizer, prompts, batch_size=3, max_new_tokens=10)

    assert batched == single
    assert len({tuple(ids) for ids in batched}) == len(prompts)
    assert uneven == [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in single]


def test_generate_ids_cuts_after_the_first_stop_token(tokenizer) -> None:
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    think = tokenizer.convert_tokens_to_ids("<think>")
    model = ScriptedModel(tail=[think, im_end, think, im_end, think])
    prompts = ["Uzun bir sual, bəli?", "Qısa?", "Orta sual?"]
    last = [tokenizer(p, add_special_tokens=False)["input_ids"][-1] for p in prompts]

    ids = generate_ids(model, tokenizer, prompts, batch_size=2, max_new_tokens=5)

    assert ids == [[token, think, im_end] for token in last]
    assert tokenizer.padding_side == "left"
    assert [call["input_ids"].shape[0] for call in model.calls] == [2, 1]
    assert all(im_end in call["eos_token_id"] for call in model.calls)
    assert all(call["do_sample"] is False for call in model.calls)


def test_generate_ids_keeps_output_without_a_stop_token(tokenizer) -> None:
    think = tokenizer.convert_tokens_to_ids("<think>")
    model = ScriptedModel(tail=[think, think])

    (ids,) = generate_ids(model, tokenizer, ["Sual?"], batch_size=4, max_new_tokens=3)

    assert ids[1:] == [think, think]


def test_generate_strips_special_tokens(tokenizer) -> None:
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer = tokenizer("<answer>7</answer>", add_special_tokens=False)["input_ids"]
    model = ScriptedModel(tail=[*answer, im_end])

    (text,) = generate(model, tokenizer, ["Sual:"], batch_size=1, max_new_tokens=10)

    echoed = tokenizer.decode(tokenizer("Sual:", add_special_tokens=False)["input_ids"][-1:])
    assert text == f"{echoed}<answer>7</answer>".strip()


def test_evaluate_models_reports_both_models(report, rows) -> None:
    assert [e.id for e in report.outputs] == [r.id for r in rows]
    assert [e.reference for e in report.outputs] == [r.reference for r in rows]
    assert [e.question for e in report.outputs] == [r.question for r in rows]
    assert report.examples == ROWS == len(report.per_example.tuned.correct)
    for figures in (report.base, report.tuned):
        assert 0.0 <= figures.format_rate <= 1.0
    assert all(isinstance(e.base_prediction, str) for e in report.outputs)


def test_evaluate_models_respects_max_examples(tiny_base_dir, tiny_adapter, rows) -> None:
    cfg = EvalConfig(batch_size=2, max_new_tokens=2, max_examples=2)

    small = evaluate_models(tiny_base_dir, tiny_adapter.adapter_dir, rows, cfg)

    assert [e.id for e in small.outputs] == [r.id for r in rows[:2]]


def test_evaluate_models_rejects_no_rows(tiny_base_dir, tiny_adapter) -> None:
    with pytest.raises(ValueError, match="no held-out examples"):
        evaluate_models(tiny_base_dir, tiny_adapter.adapter_dir, [], EvalConfig())


def test_the_document_is_the_report_without_its_outputs(report, document, tiny_split) -> None:
    assert type(document) is MetricsDocument  # what the step hands on and writes
    as_json = document.to_json()  # as metrics.json holds it
    assert as_json == report.to_json() and "outputs" not in as_json
    for side in ("base", "tuned", "delta"):
        assert set(SCORED) <= set(as_json[side])
    assert "tok:13a" in as_json["sacrebleu_signature"] and as_json["chrf_signature"]
    assert as_json["examples"] == ROWS
    assert as_json["data_hash"] == tiny_split.data_hash
    assert as_json["model_revision"] == "nizami-1.7b-tiny@v3"


def test_delta_is_tuned_minus_base_and_the_summary_flattens_it(known) -> None:
    for figure in FIGURES:
        expected = known.tuned.get(figure) - known.base.get(figure)
        assert known.delta.get(figure) == pytest.approx(expected, abs=1e-4)
    assert known.delta.accuracy == 0.7 and known.delta.format_rate == 0.9
    summary = known.summary()
    assert summary["delta/accuracy"] == 0.7 and summary["tuned/accuracy"] == 0.9
    assert summary["tuned/accuracy_ci_low"] == 0.7864
    assert summary["p_value/accuracy"] == known.tuned_vs_base["accuracy"].p_value


def test_write_metrics_is_utf8_json_and_reads_back_as_written(document, tmp_path) -> None:
    document = document.model_copy(update={"model_revision": "şəki-ğöüçı"})

    path = document.write(tmp_path / "nested" / "metrics.json")

    text = path.read_bytes().decode("utf-8")
    assert "şəki-ğöüçı" in text
    assert "\\u" not in text
    assert json.loads(text) == document.to_json()
    assert MetricsDocument.read(path) == document
    legacy = {"examples": 50, "base": {"bleu": 1.0}, "tuned": {"bleu": 2.0}}  # an older file
    path.write_text(json.dumps(legacy))
    assert MetricsDocument.read(path).to_json() == legacy  # nothing added on the way


def test_render_html_escapes_predictions(report, document) -> None:
    examples = [
        ExampleResult(
            id=f"az-{i:04d}",
            question="2 + 2 <b>nədir</b>?",
            reference="<think>2 + 2 = 4.</think>\n\n<answer>4</answer>",
            base_prediction="<think>bilmirəm",
            tuned_prediction="<think>2 + 2 = 4.</think><answer>4 & 4</answer>",
        )
        for i in (7, 8, 9)
    ]
    page = render_html(report.model_copy(update={"outputs": examples}))

    assert "<think>" not in page and "<answer>" not in page and "<b>" not in page
    assert "&lt;think&gt;bilmirəm" in page
    assert "4 &amp; 4" in page
    for example in examples:
        assert f"<td>{example.id}</td>" in page
    assert document.sacrebleu_signature in page
    tables = 1 + len(FIGURES) + 1 + len(document.families) + 1 + len(examples)
    assert page.count("<tr>") == tables


def test_render_html_lists_every_evaluated_example(report) -> None:
    page = render_html(report)

    for example in report.outputs:
        assert f"<td>{example.id}</td>" in page


def test_publish_metrics_writes_the_run_and_the_latest_copies(document, tmp_path) -> None:
    path = publish_metrics(document, "<html>report</html>", tmp_path, "run-7")
    assert path == tmp_path / "run-7" / "metrics.json"
    for folder in (tmp_path, tmp_path / "run-7"):
        on_disk = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        assert on_disk == document.to_json()
        assert (folder / "eval_report.html").read_text(encoding="utf-8") == "<html>report</html>"


# ------------------------------------------------------- constructed outputs, known scores


def _row(i: int, family: str, answer: str) -> ChatExample:
    return ChatExample(
        id=f"az-{i:04d}", question=f"Sual {i}?", answer=answer, family=family,
        reference=f"<think>hesab</think>\n\n<answer>{answer}</answer>",
        prompt="p", completion="c",
    )


ROWS_KNOWN = [_row(i, "money", f"Qalıq {i} manatdır.") for i in range(30)] + [
    _row(30 + i, "calendar", "3 gün sonra cümə olacaq.") for i in range(20)
]


def _outputs(right: set[int], tagged: set[int]) -> Generation:
    texts = []
    for i, row in enumerate(ROWS_KNOWN):
        answer = (f"{i},0 AZN" if row.family == "money" else "3 gün sonra CÜMƏ olacaq") if (
            i in right) else "bilmirəm"
        texts.append(f"<think>hesab</think>\n\n<answer>{answer}</answer>" if i in tagged
                     else f"Məncə {answer}")
    return Generation(texts=texts, output_tokens=[10 + i % 2 for i in range(50)], seconds=1.0)


@pytest.fixture(scope="module")
def known() -> EvalReport:
    base = _outputs(right=set(range(0, 10)), tagged=set())  # 10/50 right, no tags
    tuned = _outputs(right=set(range(0, 25)) | set(range(30, 50)), tagged=set(range(45)))
    return build_report(ROWS_KNOWN, base, tuned, "md5", "rev")


def test_accuracy_format_and_length_on_known_outputs(known) -> None:
    assert known.base.accuracy == 0.2 and known.tuned.accuracy == 0.9
    assert known.base.format_rate == 0.0 and known.tuned.format_rate == 0.9
    assert known.base.mean_output_tokens == known.tuned.mean_output_tokens == 10.5
    assert known.per_example.base.correct[:11] == [True] * 10 + [False]
    assert [e.tuned_correct for e in known.outputs].count(True) == 45


def test_every_figure_has_an_interval_around_it(known) -> None:
    for side in ("base", "tuned"):
        figures, intervals = getattr(known, side), getattr(known.intervals, side)
        assert set(intervals) == set(FIGURES)
        for figure in FIGURES:
            low, high = intervals[figure]
            assert low <= figures.get(figure) + 1e-4 and figures.get(figure) <= high + 1e-4
    assert known.intervals.tuned["accuracy"] == pytest.approx((0.7864, 0.9565), abs=1e-4)


def test_tuned_vs_base_is_tested_paired(known) -> None:
    accuracy = known.tuned_vs_base["accuracy"]
    assert accuracy.delta == pytest.approx(0.7) and accuracy.p_value < 0.01
    assert known.tuned_vs_base["bleu"].p_value < 0.01 and known.tuned_vs_base["bleu"].delta > 0
    same = known.tuned_vs_base["mean_output_tokens"]
    assert same.delta == 0.0 and same.p_value == 1.0


def test_accuracy_per_family(known) -> None:
    money, calendar = known.families["money"], known.families["calendar"]
    assert (money.n, money.base_accuracy, money.tuned_accuracy) == (30, 0.3333, 0.8333)
    assert (calendar.n, calendar.base_accuracy, calendar.tuned_accuracy) == (20, 0.0, 1.0)
    low, high = calendar.tuned_interval
    assert high == 1.0 and 0.8 < low < 0.9


def test_the_document_keeps_intervals_tests_families_and_per_example_scores(known) -> None:
    document = known.document().to_json()

    assert list(document) == [  # the metrics.json format tools and CI's job summary read
        "examples", "data_hash", "model_revision", "scored_on", "answer_accuracy",
        "sacrebleu_signature", "chrf_signature", "base", "tuned", "delta", "intervals",
        "tuned_vs_base", "families", "uncertainty", "per_example",
    ]
    assert set(document["tuned_vs_base"]["accuracy"]) == {"delta", "p_value", "interval", "method"}
    assert set(document["tuned_vs_base"]["bleu"]) == {"delta", "p_value", "method"}
    assert document["tuned"]["accuracy"] == 0.9 and document["delta"]["accuracy"] == 0.7
    assert document["intervals"]["tuned"]["accuracy"] == [0.7864, 0.9565]
    assert document["tuned_vs_base"]["accuracy"]["p_value"] < 0.01
    assert document["families"]["calendar"]["tuned_accuracy"] == 1.0
    per_example = document["per_example"]
    assert per_example["id"] == [r.id for r in ROWS_KNOWN]
    assert per_example["reference"][0] == "Qalıq 0 manatdır."
    assert per_example["tuned"]["correct"].count(True) == 45
    assert "answer" in per_example["tuned"] and "answer" not in per_example["base"]
    assert json.loads(json.dumps(document)) == document
    assert "null" not in json.dumps(document)  # BentoML's model metadata rejects None


def test_metadata_copy_drops_the_texts_and_fits_zenmls_limit(known) -> None:
    long = Generation(texts=["ə" * 3000] * 50, output_tokens=[512] * 50, seconds=1.0)
    typed = build_report(ROWS_KNOWN, long, long, "md5", "rev").document()
    document = typed.to_json()
    assert len(json.dumps(document)) > 65_535  # too big for one ZenML metadata value

    slim = typed.without_texts().to_json()
    assert len(json.dumps(slim)) < 65_535
    assert "answer" not in slim["per_example"]["tuned"] and "reference" not in slim["per_example"]
    assert slim["per_example"]["tuned"]["correct"] == document["per_example"]["tuned"]["correct"]
    assert "answer" in typed.to_json()["per_example"]["tuned"]  # the original is untouched


def test_the_report_shows_accuracy_intervals_and_families(known) -> None:
    page = render_html(known)

    assert "answer accuracy: base 20.0 % [11.2 %, 33.0 %] → tuned 90.0 % [78.6 %, 95.7 %]" in page
    assert "<th>calendar</th><td>20</td><td>0.0 %" in page
    assert "format rate" in page and "mean output tokens" in page
    assert "✓ " in page and "✗ " in page


AVX2 = frozenset({"fma", "avx", "avx2"})
AVX512_BF16 = AVX2 | {"avx512f", "avx512_bf16"}


@pytest.mark.parametrize(
    ("configured", "model", "device", "flags", "used"),
    [
        ("auto", "float16", "cuda", AVX2, "float16"),
        ("auto", "float16", "cpu", AVX2, "float32"),
        ("auto", "float16", "cpu", AVX512_BF16, "bfloat16"),
        ("auto", "float32", "cpu", AVX512_BF16 | {"amx_tile", "amx_bf16"}, "bfloat16"),
        ("bfloat16", "float16", "cpu", AVX2, "bfloat16"),
        ("float32", "float16", "cpu", AVX512_BF16, "float32"),
    ],
)
def test_generation_dtype(configured, model, device, flags, used, caplog) -> None:
    """On a CPU, ``auto`` follows its bf16 units (AMX, AVX512-BF16) and says so in the log."""
    caplog.set_level("INFO", logger="steps.core.evaluate.compare")
    assert generation_dtype(EvalConfig(dtype=configured), model, device, flags) == used
    logged = [r.getMessage() for r in caplog.records if "generating in" in r.getMessage()]
    if configured == "auto" and device == "cpu":
        assert len(logged) == 1, logged
        assert logged[0].startswith(f"evaluate: generating in {used} on this CPU (")
        assert ("bf16 units: " in logged[0]) == (used == "bfloat16")
    else:
        assert logged == []


def test_strict_accuracy_needs_the_format(known) -> None:
    assert known.base.strict_accuracy == 0.0  # right answers, but never well-formed
    assert known.tuned.strict_accuracy == 0.8  # right and tagged: 0-24 and 30-44
    assert known.tuned_vs_base["strict_accuracy"].method.startswith("exact McNemar")


def test_families_carry_intervals_holm_and_are_ordered_by_evidence(known) -> None:
    assert list(known.families) == ["money", "calendar"]  # 30 examples before 20
    money, calendar = known.families["money"], known.families["calendar"]
    assert money.delta == 0.5 and money.p_value < 0.001 and money.finding == "improvement"
    assert calendar.holm_p_value >= calendar.p_value  # adjusted for the two families
    low, high = calendar.delta_interval
    assert low < 1.0 <= high + 1e-9


def test_a_family_difference_without_evidence_is_not_called_a_regression() -> None:
    rows = [_row(i, "money", f"Qalıq {i} manatdır.") for i in range(6)]
    right = Generation(texts=[f"{i} manat" for i in range(6)], output_tokens=[5] * 6, seconds=1)
    worse = right.model_copy(update={"texts": ["0 manat", "bilmirəm", *right.texts[2:4],
                                               "bilmirəm", "5 manat"]})  # fmt: skip
    family = build_report(rows, right, worse).families["money"]
    assert family.delta < 0 and family.finding == "no evidence of a difference"


def test_the_report_shows_target_what_was_read_and_why() -> None:
    from steps.core.data.examples import NumberTarget

    row = _row(1, "money", "Qalıq 7 manatdır.").model_copy(
        update={"target": NumberTarget(kind="number", value=7, unit="manat")}
    )
    base = Generation(texts=["7 və ya 8 manat"], output_tokens=[5], seconds=1.0)
    tuned = Generation(texts=["<think>x</think>\n\n<answer>700 qəpik</answer>"],
                       output_tokens=[5], seconds=1.0)  # fmt: skip
    page = render_html(build_report([row], base, tuned, "md5", "rev"))
    assert "<strong>7 manat</strong>" in page  # the target
    assert "offers alternatives: 7 / 8 manat" in page  # why the base answer is wrong
    assert "read: <strong>700 qəpik</strong>" in page and "= target 7 manat" in page


def test_the_summary_says_when_fewer_examples_than_production_are_evaluated(known) -> None:
    from steps.core.evaluate.report import summary_lines

    lines = summary_lines(known.document())
    assert lines[0].startswith("held-out examples: 50 (fewer than the production default 308")
    assert any(line.startswith("strict accuracy: base 0.0 %") for line in lines)
    full = known.document().model_copy(update={"examples": 308})
    assert summary_lines(full)[0] == "held-out examples: 308"

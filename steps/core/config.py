"""The pipeline's configuration: one typed model, validated before ZenML is touched.

Domain YAML files in ``pipelines/configs/`` say *what* to train; ZenML run configs in
``stacks/`` say *where*. This module only knows the former, and reads no environment variable:
the project's own (``NIZAMI_ROOT``, ``NIZAMI_CACHE``, ``NIZAMI_CHECKPOINTS``,
``NIZAMI_RESUME_FROM``) are read in :mod:`steps.core.paths`. Every field has a description
(``Field(description=…)``): the reader of a YAML finds what a key means here, in one hop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from steps.core.paths import find_project_root

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinyModelConfig(_Strict):
    """Shape of the random Qwen3 built in code for tests (no download)."""

    hidden_size: PositiveInt = Field(64, description="width of the residual stream")
    intermediate_size: PositiveInt = Field(128, description="width of the MLP's hidden layer")
    num_hidden_layers: PositiveInt = Field(2, description="decoder layers")
    num_attention_heads: PositiveInt = Field(4, description="query heads per layer")
    num_key_value_heads: PositiveInt = Field(2, description="key/value heads per layer (GQA)")
    head_dim: PositiveInt = Field(16, description="width of one attention head")
    vocab_size: PositiveInt = Field(1024, description="tokens of the tokenizer trained in code")
    seed: int = Field(0, description="torch seed of the random weights")


class ModelConfig(_Strict):
    """Where the base model comes from.

    ``hub``: a Hugging Face repo id (or local directory) at ``revision``.
    ``gguf``: a GGUF file shipped inside a pip package (offline default for the demo).
    ``tiny``: a random Qwen3 of shape ``tiny`` with a tokenizer trained in code.
    """

    source: Literal["hub", "gguf", "tiny"] = Field(description="hub, gguf or tiny (see above)")
    name: str = Field(description="Hub repo id or local directory (hub); a name (gguf, tiny)")
    revision: str | None = Field(None, description="Hub revision to pin (hub); None = latest")
    gguf_package: str | None = Field(None, description="pip package that ships the GGUF file")
    gguf_file: str | None = Field(None, description="the GGUF file's path inside that package")
    tiny: TinyModelConfig | None = Field(None, description="shape of the random model (tiny)")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="the base model's own dtype: evaluation generates in it on a GPU "
        "when `evaluation.dtype` is auto"
    )

    @model_validator(mode="after")
    def _check_source_fields(self) -> ModelConfig:
        if self.source == "gguf" and not (self.gguf_package and self.gguf_file):
            raise ValueError("source 'gguf' needs both 'gguf_package' and 'gguf_file'")
        if self.source == "tiny" and self.tiny is None:
            raise ValueError("source 'tiny' needs a 'tiny' block (use {} for the defaults)")
        return self


class DataConfig(_Strict):
    """The DVC-tracked JSONL file and how it is split."""

    path: Path = Field(
        Path("data/nizami.jsonl"), description="the DVC-tracked JSONL file (relative: to the "
        "project root)"
    )
    rev: str | None = Field(None, description="git revision of the DVC pointer; None = checkout")
    held_out: PositiveInt = Field(
        308, description="examples held out for evaluation (308 = 22 per family of the shipped "
        "data; the quality gate's power at this size is in docs/evaluation.md)"
    )
    stratify: bool = Field(
        True, description="hold out each task family in proportion to its size; false = the "
        "first `held_out` in hashed order (the seed's split)"
    )
    seed: int = Field(0, description="seed of the hashed order the split takes examples in")
    max_train_examples: PositiveInt | None = Field(
        None, description="train on the first N training examples only (demo); None = all"
    )


class LoraSettings(_Strict):
    """The LoRA adapter's shape (peft ``LoraConfig``)."""

    r: PositiveInt = Field(16, description="rank of the low-rank update")
    alpha: PositiveInt = Field(32, description="scale: the update is multiplied by alpha / r")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="dropout on the adapter's input")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LORA_TARGETS), description="linear layers that get an adapter"
    )


class TrainConfig(_Strict):
    """transformers.Trainer knobs that the recipe sets; everything else stays at its default.

    **Batches and processes.** The global batch, ``batch_size × grad_accum`` examples per
    optimizer step, is what the recipe means; it does not depend on the number of processes.
    With W processes (DDP, one per GPU) each process takes global / W examples per optimizer
    step, in micro-batches of at most ``batch_size`` (so ``grad_accum`` per process becomes
    global / (W × micro-batch)). One GPU, two GPUs and a CPU therefore take the same optimizer
    steps over batches of the same size; W must divide the global batch.

    **Throughput levers** (each can be switched off, e.g. by ``bench/train_throughput.py``):
    ``packing``, ``liger_kernel``, ``torch_compile``, ``gradient_checkpointing: auto`` and
    ``auto_micro_batch``. Levers that need CUDA fall back on a CPU with a log line.
    """

    epochs: PositiveFloat = Field(2.0, description="passes over the training examples")
    max_steps: PositiveInt | None = Field(None, description="optimizer steps; None = epochs")
    batch_size: PositiveInt = Field(
        8, description="micro-batch: examples per forward/backward in one process"
    )
    grad_accum: PositiveInt = Field(
        1, description="micro-batches per optimizer step on one process; global batch = "
        "batch_size × grad_accum, kept for any number of processes"
    )
    learning_rate: PositiveFloat = Field(2e-4, description="peak learning rate (AdamW)")
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = Field(
        "cosine", description="learning-rate schedule after the warmup"
    )
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0, description="share of steps warming up")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    max_length: PositiveInt = Field(1024, description="tokens per example; longer ones are cut")
    precision: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32", description="mixed precision on a GPU (T4: fp16, no bf16); a CPU trains in fp32"
    )
    gradient_checkpointing: bool | Literal["auto"] = Field(
        False, description="recompute activations in the backward pass; 'auto' = only when the "
        "memory estimate says the micro-batch does not fit on the GPU without it (CPU: off)"
    )
    auto_micro_batch: bool = Field(
        False, description="on a GPU, use the largest micro-batch that the memory estimate fits "
        "and that divides the per-process share of the global batch (it may exceed batch_size)"
    )
    group_by_length: bool = Field(True, description="batch examples of similar length together")
    pad_to_multiple_of: PositiveInt = Field(8, description="pad each batch to a multiple of N")
    packing: bool = Field(
        False, description="padding-free batches: each micro-batch is one row of concatenated "
        "examples whose position ids restart per example (DataCollatorWithFlattening); the "
        "attention implementation keeps examples apart (sdpa, eager and flex_attention build "
        "a block-diagonal mask from the position ids, flash_attention_2 runs varlen kernels)"
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flex_attention"] = (
        Field("sdpa", description="transformers attention; flash_attention_2 needs Ampere+")
    )
    liger_kernel: bool = Field(
        False, description="liger-kernel's Triton kernels for RMSNorm, SwiGLU, RoPE and the fused "
        "linear cross-entropy (the [gpu] extra, CUDA only; skipped with a log line on a CPU, "
        "where it is not installed, or when its self-test fails on the GPU)"
    )
    torch_compile: bool = Field(False, description="torch.compile the model (CUDA only)")
    processes: PositiveInt | None = Field(
        None, description="training processes, one per GPU (DDP via torchrun); None = one per "
        "visible GPU, 1 on a CPU; >1 on a CPU runs gloo DDP (tests)"
    )
    checkpoint_every_steps: PositiveInt | None = Field(
        100, description="save a checkpoint (adapter, optimizer, scheduler, RNG states, step) "
        "every N optimizer steps; None = only when the time budget runs out"
    )
    checkpoints_kept: PositiveInt = Field(2, description="newest checkpoints kept on disk")
    checkpoint_dir: Path = Field(
        Path("outputs/checkpoints"), description="where checkpoints go (relative to the "
        "repository; NIZAMI_CHECKPOINTS overrides it, e.g. /kaggle/working/checkpoints); a run "
        "that finds a checkpoint of the same data and recipe here resumes from it, and removes "
        "its checkpoints once the adapter is saved"
    )
    time_budget_s: PositiveFloat | None = Field(
        None, description="seconds of training allowed in this process (Kaggle: the 12 h session "
        "minus setup and upload): before the next step would cross it, training checkpoints "
        "and stops with TrainingInterrupted, to be resumed"
    )
    logging_steps: PositiveInt = Field(5, description="log loss and learning rate every N steps")
    seed: int = Field(0, description="seed of the LoRA initialisation and the data order")


class EvalConfig(_Strict):
    """Greedy generation on the held-out set (prompts are batched in order of length)."""

    batch_size: PositiveInt = Field(16, description="prompts generated together")
    max_new_tokens: PositiveInt = Field(256, description="tokens generated per answer at most")
    max_examples: PositiveInt | None = Field(
        None, description="evaluate the first N held-out examples only; None = all"
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: the base model's dtype on a GPU; on a CPU bfloat16 where it has "
        "AMX or AVX512-BF16 and the model 1B parameters or more, else float32 (logged)"
    )


GateMetric = Literal[
    "accuracy", "strict_accuracy", "format_rate", "bleu", "chrf", "rouge1", "rouge2", "rougeL"
]
# 0-1 (right/wrong per example); the other gate metrics are on 0-100
FRACTION_METRICS = ("accuracy", "strict_accuracy", "format_rate")


class GateConfig(_Strict):
    """The quality gate: when does a new version become production?

    Promote when the tuned model's ``metric`` on the held-out set is >= ``threshold`` AND it is
    not worse than the current production version by ``margin`` or more, shown on the same
    examples: the lower bound of the one-sided (1 - ``alpha``) interval of candidate minus
    production must be above -``margin`` (non-inferiority). Right/wrong metrics (accuracy,
    format rate) use the exact McNemar bound, the others a paired bootstrap of ``resamples``.
    What the gate can see at a given held-out size: docs/evaluation.md (power table).
    A legacy config with only ``bleu_threshold`` (and ``tolerance``) gates on BLEU; a legacy
    ``tolerance`` above 0 is the margin.
    """

    metric: GateMetric = Field(
        "accuracy",
        description="accuracy, strict_accuracy (right and well-formed) and format_rate are "
        "fractions (0-1); BLEU, chrF, ROUGE are 0-100",
    )
    threshold: float = Field(..., ge=0.0, description="minimum value of `metric` to promote")
    margin: float | None = Field(
        None, gt=0.0, description="the loss against production the gate must rule out, in the "
        "metric's units (default 0.05 = 5 points for fractions, 5.0 for BLEU/chrF/ROUGE)"
    )
    alpha: float = Field(
        0.05, gt=0.0, lt=0.5, description="one-sided level: the bound is of a (1 - alpha) interval"
    )
    resamples: int = Field(
        10_000, ge=10_000, description="paired bootstrap resamples (metrics other than accuracy "
        "and format rate)"
    )
    tolerance: float = Field(
        0.0, ge=0.0, description="legacy name of the margin (used when above 0 and no margin)"
    )

    @property
    def effective_margin(self) -> float:
        """The margin: ``margin``, else a legacy ``tolerance`` above 0, else 5 points."""
        if self.margin is not None:
            return self.margin
        if self.tolerance > 0:
            return self.tolerance
        return 0.05 if self.metric in FRACTION_METRICS else 5.0

    @model_validator(mode="before")
    @classmethod
    def _legacy_bleu_threshold(cls, data: object) -> object:
        """``{bleu_threshold: x}`` (the first config format) means metric bleu, threshold x."""
        if not isinstance(data, dict) or "bleu_threshold" not in data:
            return data
        if "threshold" in data or data.get("metric", "bleu") != "bleu":
            raise ValueError(
                "bleu_threshold is the legacy form of {metric: bleu, threshold: ...}: "
                "give either bleu_threshold or metric + threshold, not both"
            )
        legacy = {k: v for k, v in data.items() if k != "bleu_threshold"}
        return {"tolerance": 0.5} | legacy | {"metric": "bleu", "threshold": data["bleu_threshold"]}

    @model_validator(mode="after")
    def _check_scale(self) -> GateConfig:
        top = 1.0 if self.metric in FRACTION_METRICS else 100.0
        for name in ("threshold", "tolerance", "margin"):
            value = getattr(self, name)
            if value is not None and value > top:
                raise ValueError(
                    f"{name} {value} is out of range for {self.metric} "
                    f"(0-{top:g}{'; a fraction, e.g. 0.6 for 60 %' if top == 1.0 else ''})"
                )
        return self


class RegistryConfig(_Strict):
    """Numbering on the stack's model registry (used only when the stack has one)."""

    bump: Literal["minor", "major"] = Field(
        "minor", description="next vX.Y: minor (vX.Y+1) or major (vX+1.0)"
    )


class PackageConfig(_Strict):
    """The merged model saved for serving and the bentos built around it."""

    bento_model: str = Field("nizami-1.7b", description="BentoML model (and bento) name")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "bfloat16", description="dtype the adapter is merged and saved in"
    )
    from_revision: str | None = Field(
        None, description="package this registered version (vX.Y, prod) instead of the new one"
    )
    images: list[Literal["gpu", "cpu"]] = Field(
        ["gpu", "cpu"],
        description="bento variants whose image the step builds where a Docker engine runs "
        "(the others, and all without an engine, are left as build contexts; `make image`)",
    )


class PipelineConfig(_Strict):
    """Everything that decides what gets trained, evaluated, registered and packaged."""

    model_name: str = Field("nizami-1.7b", description="the ZenML Model (and registry) name")
    base_model: ModelConfig = Field(description="the model the adapter is trained on")
    data: DataConfig = Field(DataConfig(), description="the dataset and its split")
    lora: LoraSettings = Field(LoraSettings(), description="the adapter's shape")
    train: TrainConfig = Field(TrainConfig(), description="the fine-tune")
    evaluation: EvalConfig = Field(EvalConfig(), description="held-out generation")
    gate: GateConfig = Field(description="when a version becomes production")
    registry: RegistryConfig = Field(RegistryConfig(), description="version numbering")
    package: PackageConfig = Field(PackageConfig(), description="the served model and bentos")
    output_dir: Path = Field(
        Path("outputs"), description="where metrics.json and the HTML report are written"
    )


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and each bad field."""


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate a domain config YAML.

    Args:
        path: YAML file; relative paths resolve against the current directory, then the project
            root (:func:`project_root`).

    Returns:
        The validated config.

    Raises:
        ConfigError: unreadable YAML, or fields that are unknown, missing or of the wrong type.
    """
    path = Path(path)
    if not path.is_file() and not path.is_absolute():
        root = find_project_root()
        if root is not None and (root / path).is_file():
            path = root / path
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(f"{path}: config file not found") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"]) or "<root>"
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{path}: {where}: {msg}")
        raise ConfigError("\n".join(problems)) from e

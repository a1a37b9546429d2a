"""Fold a LoRA adapter into its base model: the directory that serving consumes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from steps.core.modeling import load_model, load_tokenizer, torch_dtype

log = logging.getLogger(__name__)


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path, dtype: str) -> Path:
    """Merge ``adapter_dir`` into the base model and save a plain model directory.

    The result loads with ``AutoModelForCausalLM.from_pretrained`` (and vLLM) without peft.

    Args:
        base_dir: base model directory.
        adapter_dir: peft adapter directory.
        out_dir: where the merged model and tokenizer are written.
        dtype: dtype of the saved weights.
    """
    from peft import PeftModel

    model = load_model(base_dir).cpu()
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged = merged.to(torch_dtype(dtype))
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    load_tokenizer(adapter_dir).save_pretrained(out_dir)
    (out_dir / "adapter_config.json").unlink(missing_ok=True)
    adapter_cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    log.info(
        "merged LoRA r=%s into %s -> %s (%s)",
        adapter_cfg.get("r"),
        base_dir,
        out_dir,
        dtype,
    )
    return out_dir

"""Throughput levers of the train step, and the plan that decides how each one is used.

:func:`plan_training` turns the recipe (:class:`~steps.core.config.TrainConfig`), the model and
the number of processes into a :class:`TrainPlan`: micro-batch and accumulation per process
(keeping the global batch), gradient checkpointing (``auto``: only when the memory estimate
needs it) and which CUDA-only levers really run here. :func:`apply_liger` patches liger-kernel
into a model after a self-test of its kernels on this GPU. Every lever can be turned off in the
config, and every one that cannot run here says so in the log and is skipped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel

from steps.core.config import TrainConfig

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)
GIB = 2**30
# Bytes kept for the CUDA context, cuBLAS workspaces and allocator fragmentation.
_RESERVED_BYTES = 1.5 * GIB
_USABLE_FRACTION = 0.92


class TrainPlan(BaseModel):
    """How one process trains: the recipe resolved for this machine."""

    world_size: int
    micro_batch: int
    grad_accum: int
    gradient_checkpointing: bool
    packing: bool
    liger_kernel: bool
    torch_compile: bool
    attn_implementation: str
    estimated_gib: float | None = None
    device_gib: float | None = None

    @property
    def global_batch(self) -> int:
        return self.world_size * self.micro_batch * self.grad_accum


def activation_bytes_per_token(config, dtype_bytes: int, checkpointing: bool) -> float:
    """Activation memory a LoRA forward keeps for the backward pass, per token.

    Measured with ``torch.autograd.graph.saved_tensors_hooks`` on Qwen3 layers under autocast
    with LoRA (r=16, dropout 0.05) on all seven projections: per layer and token
    28·hidden + 6·intermediate elements (tests/unit/test_train_plan.py checks this against a
    fresh measurement). With checkpointing only each layer's input is kept, plus one layer's
    activations while it is recomputed.
    """
    h, i = config.hidden_size, config.intermediate_size
    layer = dtype_bytes * (28 * h + 6 * i)
    if checkpointing:
        return config.num_hidden_layers * dtype_bytes * h + layer
    return config.num_hidden_layers * layer


def estimate_memory_bytes(
    config, n_params: int, n_trainable: int, tokens: int, dtype_bytes: int,
    checkpointing: bool, fused_cross_entropy: bool,
) -> float:
    """Peak GPU memory of one training micro-batch of ``tokens`` tokens (an estimate).

    Frozen weights, LoRA weights with their fp32 gradients and Adam moments, activations
    (:func:`activation_bytes_per_token`) and the logits: the fp32 copy the loss keeps plus the
    fp32 and half-precision gradients of the backward pass (chunked away by liger's fused
    linear cross-entropy).
    """
    weights = n_params * dtype_bytes + n_trainable * 16
    activations = tokens * activation_bytes_per_token(config, dtype_bytes, checkpointing)
    if fused_cross_entropy:
        logits = tokens * config.hidden_size * 8
    else:
        logits = tokens * config.vocab_size * (8 + 2 * dtype_bytes)
    return weights + activations + logits


def plan_training(
    cfg: TrainConfig, model: PreTrainedModel, world_size: int, device_memory: int | None,
    liger_active: bool = False,
) -> TrainPlan:
    """Resolve the recipe for ``world_size`` processes on devices of ``device_memory`` bytes.

    Args:
        cfg: the recipe.
        model: the (LoRA-wrapped) model to train; its config and parameter counts size the
            memory estimate.
        world_size: number of training processes.
        device_memory: bytes of one GPU; None on a CPU (no memory-driven choices).
        liger_active: liger's fused cross-entropy is in use (no logits in memory).

    Raises:
        ValueError: the global batch cannot be split evenly over ``world_size`` processes.
    """
    global_batch = cfg.batch_size * cfg.grad_accum
    if global_batch % world_size:
        raise ValueError(
            f"train.batch_size × train.grad_accum = {global_batch} examples per optimizer step "
            f"cannot be split evenly over {world_size} processes"
        )
    share = global_batch // world_size
    on_gpu = device_memory is not None
    cap = share if cfg.auto_micro_batch and on_gpu else cfg.batch_size
    sizes = [d for d in range(min(cap, share), 0, -1) if share % d == 0]
    if cfg.gradient_checkpointing == "auto":
        options = [False, True] if on_gpu else [False]
    else:
        options = [cfg.gradient_checkpointing]
    micro, checkpointing, estimate = sizes[0], options[0], None
    if on_gpu:
        n_params, n_trainable = _parameter_counts(model)
        dtype_bytes = next(model.parameters()).element_size()
        budget = device_memory * _USABLE_FRACTION - _RESERVED_BYTES
        fits = [
            (size, gc, need)
            for size in sizes
            for gc in options
            if (need := estimate_memory_bytes(
                model.config, n_params, n_trainable, size * cfg.max_length, dtype_bytes, gc,
                liger_active,
            )) <= budget
        ]
        if fits:
            micro, checkpointing, estimate = fits[0]
        else:
            micro, checkpointing = sizes[-1], options[-1]
            log.warning("memory estimate: even micro-batch %d may not fit on this GPU", micro)
    plan = TrainPlan(
        world_size=world_size,
        micro_batch=micro,
        grad_accum=share // micro,
        gradient_checkpointing=checkpointing,
        packing=cfg.packing,
        liger_kernel=liger_active,
        torch_compile=_compile_available(cfg.torch_compile),
        attn_implementation=attention_here(cfg.attn_implementation),
        estimated_gib=round(estimate / GIB, 2) if estimate else None,
        device_gib=round(device_memory / GIB, 2) if on_gpu else None,
    )
    log.info("train plan: %s", plan.model_dump())
    return plan


def _parameter_counts(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def _compile_available(wanted: bool) -> bool:
    import torch

    if wanted and not torch.cuda.is_available():
        log.info("torch_compile: off on a CPU (the recipe's compile settings target CUDA)")
        return False
    return wanted


def attention_here(name: str) -> str:
    """``name``, or ``sdpa`` on a CPU for the GPU-only implementations (with a log line)."""
    import torch

    if name in ("flash_attention_2", "flex_attention") and not torch.cuda.is_available():
        log.info("attn_implementation: %s trains on CUDA only; sdpa on this CPU", name)
        return "sdpa"
    return name


def device_memory_bytes() -> int | None:
    """Memory of this process's GPU, or None on a CPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory


def apply_liger(model: PreTrainedModel, wanted: bool) -> bool:
    """Patch liger-kernel's RMSNorm, SwiGLU, RoPE and fused linear cross-entropy into ``model``.

    Call it on the base model before LoRA wraps it. Returns whether the kernels are in use:
    False (with a log line) on a CPU, without the ``[gpu]`` extra, for a model type liger does
    not know, or when the kernels fail a forward/backward self-test on this GPU (liger's
    Triton kernels are tested by its authors on Ampere and newer; Triton supports Turing,
    the T4's compute capability 7.5, only partly since 3.3).
    """
    if not wanted:
        return False
    import torch

    if not torch.cuda.is_available():
        log.info("liger_kernel: off on a CPU (its Triton kernels need CUDA)")
        return False
    try:
        from liger_kernel.transformers.monkey_patch import (
            MODEL_TYPE_TO_APPLY_LIGER_FN,
            _apply_liger_kernel_to_instance,
        )
    except ImportError:
        log.warning("liger_kernel: not installed (pip install 'nizami[gpu]'); training without")
        return False
    if model.config.model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        log.warning("liger_kernel: no kernels for model type %s", model.config.model_type)
        return False
    dtype = next(model.parameters()).dtype
    try:
        _self_test_liger(dtype)
    except Exception as e:  # a Triton compile or launch failure on this GPU
        log.warning("liger_kernel: self-test failed on %s (%s); training without it",
                    torch.cuda.get_device_name(), e)
        return False
    _apply_liger_kernel_to_instance(
        model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
        fused_linear_cross_entropy=True,
    )
    log.info("liger_kernel: RMSNorm, SwiGLU, RoPE and fused linear cross-entropy patched in")
    return True


def _self_test_liger(dtype) -> None:
    """Forward and backward of each kernel we use, on small tensors, against PyTorch."""
    import torch
    import torch.nn.functional as F
    from liger_kernel.ops.swiglu import LigerSiLUMulFunction
    from liger_kernel.transformers import (
        LigerFusedLinearCrossEntropyLoss,
        LigerRMSNorm,
        liger_rotary_pos_emb,
    )

    gen = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, device="cuda", dtype=dtype, generator=gen).requires_grad_()

    x, a, b = rand(8, 64), rand(8, 128), rand(8, 128)
    norm = LigerRMSNorm(64).to("cuda", dtype)
    expected = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(norm(x).float(), expected, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(
        LigerSiLUMulFunction.apply(a, b).float(), (F.silu(a.float()) * b.float()),
        atol=2e-2, rtol=2e-2,
    )
    q, k = rand(1, 2, 8, 16), rand(1, 2, 8, 16)
    cos, sin = torch.ones(1, 8, 16, device="cuda", dtype=dtype), torch.zeros(
        1, 8, 16, device="cuda", dtype=dtype
    )
    q_rot, k_rot = liger_rotary_pos_emb(q, k, cos, sin)
    torch.testing.assert_close(q_rot, q)  # angle 0 leaves q unchanged
    weight, hidden = rand(256, 64), rand(16, 64)
    target = torch.randint(0, 256, (16,), device="cuda", generator=gen)
    loss = LigerFusedLinearCrossEntropyLoss()(weight, hidden, target)
    reference = F.cross_entropy((hidden.float() @ weight.float().T), target)
    torch.testing.assert_close(loss.float(), reference, atol=5e-2, rtol=5e-2)
    (loss + norm(x).sum() + LigerSiLUMulFunction.apply(a, b).sum() + q_rot.sum()
     + k_rot.sum()).backward()
    for tensor in (x, a, b, q, k, weight, hidden):
        if not torch.isfinite(tensor.grad).all():
            raise RuntimeError("non-finite gradient from a liger kernel")
    torch.cuda.synchronize()

"""The CPU engine's settings, chosen from the CPU it runs on and the model it serves.

On ``device: cpu`` vLLM is told three things that depend on the machine: the dtype
(``--dtype``), the cores its OpenMP threads run on (``VLLM_CPU_OMP_THREADS_BIND``) and the KV
cache size (``VLLM_CPU_KVCACHE_SPACE``, GiB). :func:`read_cpu` reads what decides them
(``/proc/cpuinfo``, the process's CPU affinity, the memory available, cgroup v2 limits
included), :func:`model_size` reads the model's ``config.json`` and safetensors headers, and
:func:`choose` decides; a value the user set (a build argument, the environment variable) always
wins. The service logs :meth:`EngineSettings.summary` once at start.

The dtype rule, and its evidence:

- **bfloat16 where the CPU has AMX or AVX512-BF16** (``amx_bf16``/``amx_tile``,
  ``avx512_bf16``) **and the model has 1B parameters or more** (:data:`BF16_MIN_PARAMETERS`).
  Intel Xeon with AMX, 2 cores, a 1.5B Qwen3-shaped model, vLLM-CPU at 32 clients: 70.6 output
  tok/s in bf16 against 18.6 in fp32 (transformers one at a time: 4.6 against 3.4). AMD EPYC
  (Zen 4: AVX512-BF16, no AMX), one core, a 2048x6144 linear layer in torch: bf16 1.4x fp32 at
  batch 1, 3.2x at batch 25, 2.5x at 512 tokens (CPU time). At 135M parameters bf16 gained
  nothing with vLLM-CPU and made transformers' decode step 1.26x slower (Zen 4).
- **float32 otherwise** (AVX2 or AVX512F without BF16). vLLM-CPU 0.32 accepts bf16 on every
  x86 CPU (``CpuPlatform.supported_dtypes`` lists it without looking at the ISA) and its
  ``--dtype auto`` even turns a float32 checkpoint into bf16 (``_resolve_auto_dtype`` prefers
  the platform's first dtype, bf16). Without AVX512 it loads ``vllm._C_AVX2``, and its oneDNN
  linear cannot be created for bf16 ("could not create a primitive descriptor for the matmul
  primitive"): every linear layer falls back to ``torch.nn.functional.linear`` ("Failed to
  create oneDNN linear, fallback to torch linear" in its log). With oneDNN and ATen held to
  AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``, the ISA an AVX2-only CPU gets) a
  2048x6144 linear at batch 32 ran 10.9 GFLOP/s in bf16 against 32.6 in fp32 through oneDNN
  (2 cores, loaded). Transformers' bf16 on an AVX2-only EPYC: 3.3x slower per decode step
  (docs/benchmarks.md, on an EPYC recorded as AVX2-only).

Threads: one per usable core (the affinity mask, at most the cgroup's CPU quota), bound to
those cores. vLLM's own ``auto`` keeps one core for its HTTP server; on small machines the
engine gains more from every core (docs/benchmarks.md). The KV cache: see
:func:`choose_kv_cache_gib`.

Plain Python (no torch, no vLLM): the bento imports it in the service process.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
# The flags that decide the dtype, and those worth naming in the log.
BF16_UNITS = ("amx_bf16", "amx_tile", "avx512_bf16")
RELEVANT_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"
DEFAULT_KV_GIB = 2  # the fixed size before this module, where the model's size is unknown


@dataclass(frozen=True)
class CpuInfo:
    """What the engine settings depend on.

    Attributes:
        model: the CPU's model name (``model name`` in ``/proc/cpuinfo``).
        flags: its feature flags, as Linux reports them.
        cores: the core ids this process may run on, at most the cgroup's CPU quota.
        mem_available: bytes of memory available (``MemAvailable``, or the cgroup's limit
            less its usage where that is smaller).
    """

    model: str
    flags: frozenset[str]
    cores: tuple[int, ...]
    mem_available: int

    @property
    def bf16_units(self) -> list[str]:
        """The flags of bf16 matrix units this CPU has (AMX tiles, AVX512-BF16)."""
        return [flag for flag in BF16_UNITS if flag in self.flags]

    def describe(self) -> str:
        """``AMD EPYC (avx2 avx512f avx512_bf16), 2 usable cores, 16.2 GiB available``."""
        flags = " ".join(f for f in reversed(RELEVANT_FLAGS) if f in self.flags) or "no AVX2"
        return (f"{self.model} ({flags}), {len(self.cores)} usable core(s), "
                f"{self.mem_available / GIB:.1f} GiB available")  # fmt: skip


@dataclass(frozen=True)
class ModelSize:
    """The model's size, as far as memory goes.

    Attributes:
        parameters: weights in the safetensors files (a tied embedding counted once).
        layers, kv_heads, head_dim: from ``config.json``, for the KV cache.
    """

    parameters: int
    layers: int
    kv_heads: int
    head_dim: int

    def weights_bytes(self, dtype: str) -> int:
        return self.parameters * DTYPE_BYTES[dtype]

    def kv_bytes_per_token(self, dtype: str) -> int:
        """Keys and values of every layer: layers × kv_heads × head_dim × 2 × dtype bytes."""
        return self.layers * self.kv_heads * self.head_dim * 2 * DTYPE_BYTES[dtype]


@dataclass(frozen=True)
class EngineSettings:
    """What vLLM-CPU is told, and why (``reasons``: dtype, threads, KV cache)."""

    dtype: str
    threads_bind: str
    threads: int
    kv_cache_gib: int
    reasons: tuple[str, str, str]
    cpu: CpuInfo

    def summary(self) -> str:
        """The one line the service logs at start."""
        dtype, threads, kv = self.reasons
        return (f"CPU engine settings on {self.cpu.describe()}: dtype {self.dtype} ({dtype}); "
                f"{self.threads} thread(s) on cores {self.threads_bind} ({threads}); "
                f"KV cache {self.kv_cache_gib} GiB ({kv})")  # fmt: skip


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """The first processor's model name and flags in ``/proc/cpuinfo``'s text."""
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86; aarch64 says Features
            flags = frozenset(value.split())
    return model or "unknown CPU", flags


def parse_meminfo(text: str) -> int | None:
    """``MemAvailable`` in bytes, from ``/proc/meminfo``'s text."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def parse_cpu_list(text: str) -> list[int]:
    """Core ids of ``0-3,6`` (cpuset and ``VLLM_CPU_OMP_THREADS_BIND`` syntax)."""
    cores: list[int] = []
    for part in text.replace("|", ",").split(","):
        if not part.strip():
            continue
        first, _, last = part.strip().partition("-")
        cores.extend(range(int(first), int(last or first) + 1))
    return cores


def format_cpu_list(cores: Iterable[int]) -> str:
    """``0-3,6`` for [0, 1, 2, 3, 6]: the form ``VLLM_CPU_OMP_THREADS_BIND`` takes."""
    runs: list[list[int]] = []
    for core in sorted(set(cores)):
        if runs and core == runs[-1][1] + 1:
            runs[-1][1] = core
        else:
            runs.append([core, core])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _cgroup_cpus(cgroup: Path) -> int | None:
    """Whole cores of the cgroup v2 CPU quota (``cpu.max``: ``200000 100000``), if any."""
    quota, _, period = (_read(cgroup / "cpu.max") or "max").strip().partition(" ")
    if quota == "max" or not period:
        return None
    return max(1, int(quota) // int(period))


def _cgroup_memory_left(cgroup: Path) -> int | None:
    limit, usage = _read(cgroup / "memory.max"), _read(cgroup / "memory.current")
    if not limit or limit.strip() == "max" or not usage:
        return None
    return max(0, int(limit) - int(usage))


def read_cpu(
    proc: Path = Path("/proc"),
    cgroup: Path = Path("/sys/fs/cgroup"),
    affinity: Iterable[int] | None = None,
) -> CpuInfo:
    """This machine's CPU, as :func:`choose` needs it (the arguments are for tests)."""
    model, flags = parse_cpuinfo(_read(proc / "cpuinfo") or "")
    cores = sorted(os.sched_getaffinity(0) if affinity is None else affinity)
    quota = _cgroup_cpus(cgroup)
    memory = [m for m in (parse_meminfo(_read(proc / "meminfo") or ""),
                          _cgroup_memory_left(cgroup)) if m is not None]  # fmt: skip
    return CpuInfo(model, flags, tuple(cores[:quota] if quota else cores), min(memory or [0]))


def model_size(model_dir: Path) -> ModelSize | None:
    """Parameters (safetensors headers) and KV shape (``config.json``); None if unreadable."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
        config = config.get("text_config", config)
        heads = config["num_attention_heads"]
        head_dim = config.get("head_dim") or config["hidden_size"] // heads
        parameters = sum(_safetensors_parameters(f)
                         for f in sorted(Path(model_dir).glob("*.safetensors")))  # fmt: skip
        shape = (config["num_hidden_layers"], config.get("num_key_value_heads") or heads, head_dim)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    return ModelSize(parameters, *shape) if parameters else None


def _safetensors_parameters(path: Path) -> int:
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 100 * 2**20:
            raise ValueError(f"{path}: not a safetensors header")
        header = json.loads(f.read(length))
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


# bf16 pays where the weights' matmuls make a decode step: at 1.5B parameters 3.8x with
# vLLM-CPU (AMX), while at 135M vLLM-CPU gained nothing and transformers' bf16 decode step was
# 1.26x slower than fp32 (Zen 4, AVX512-BF16). Between the two nothing was measured: the cut is
# at 1B. steps.core.modeling.BF16_MIN_PARAMETERS holds the same number (a test checks).
BF16_MIN_PARAMETERS = 1_000_000_000


def choose_dtype(
    flags: frozenset[str] | set[str], parameters: int | None = None
) -> tuple[str, str]:
    """bfloat16 where the CPU has bf16 matrix units (AMX, AVX512-BF16) and the model has at
    least :data:`BF16_MIN_PARAMETERS` (or its size is unknown), else float32."""
    units = [flag for flag in BF16_UNITS if flag in flags]
    if not units:
        return "float32", ("no AMX or AVX512-BF16: bf16 would be converted in software and "
                           "vLLM's oneDNN linear has no bf16 kernel below AVX512")  # fmt: skip
    if parameters is not None and parameters < BF16_MIN_PARAMETERS:
        return "float32", (f"the CPU has bf16 units ({', '.join(units)}), but at "
                           f"{parameters / 1e6:.0f}M parameters bf16 was measured no faster "
                           f"(it pays from {BF16_MIN_PARAMETERS / 1e9:.0f}B)")  # fmt: skip
    return "bfloat16", f"the CPU has bf16 units: {', '.join(units)}"


def choose_kv_cache_gib(
    size: ModelSize | None, dtype: str, max_num_seqs: int, max_model_len: int, mem_available: int
) -> tuple[int, str]:
    """KV cache GiB: what ``max_num_seqs`` full-length sequences need, within the memory.

    The need is ``max_num_seqs × max_model_len`` tokens of keys and values in ``dtype``
    (:meth:`ModelSize.kv_bytes_per_token`), rounded up to whole GiB. It is capped at half of
    the memory left once the weights are loaded in ``dtype`` (``mem_available − weights``),
    rounded down: the other half stays for activations, the tokenizer, the HTTP servers and
    the page cache. Never below 1 GiB (vLLM cannot start without a KV cache; a machine that
    short of memory is named in the reason). With the model's size unknown: 2 GiB.
    """
    if size is None:
        return DEFAULT_KV_GIB, "model size unknown: the fixed default"
    tokens = max_num_seqs * max_model_len
    need = math.ceil(tokens * size.kv_bytes_per_token(dtype) / GIB)
    room = mem_available - size.weights_bytes(dtype)
    cap = int(room / 2 // GIB)
    reason = (f"{max_num_seqs} seqs x {max_model_len} tokens x "
              f"{size.kv_bytes_per_token(dtype) / 1024:g} KiB need {need} GiB; half of the "
              f"{max(room, 0) / GIB:.1f} GiB left after {size.weights_bytes(dtype) / GIB:.1f} GiB "
              f"of weights is {max(cap, 0)} GiB")  # fmt: skip
    if cap < 1:
        return 1, reason + ": memory is short, taking the 1 GiB minimum"
    return max(1, min(need, cap)), reason


def choose(
    cpu: CpuInfo,
    size: ModelSize | None,
    *,
    dtype: str = "auto",
    kv_cache_gib: int | None = None,
    max_num_seqs: int = 64,
    max_model_len: int = 4096,
    environ: Mapping[str, str] | None = None,
) -> EngineSettings:
    """The engine settings for ``cpu`` and the model; explicit values win.

    Args:
        cpu: see :func:`read_cpu`.
        size: see :func:`model_size` (None: unknown).
        dtype: the build argument; ``auto`` = :func:`choose_dtype`.
        kv_cache_gib: the build argument; None = :func:`choose_kv_cache_gib`.
        max_num_seqs, max_model_len: the engine's limits (the KV cache's need).
        environ: where a user-set ``VLLM_CPU_OMP_THREADS_BIND`` is looked up (``os.environ``).
    """
    environ = os.environ if environ is None else environ
    parameters = size.parameters if size else None
    chosen, dtype_reason = (
        choose_dtype(cpu.flags, parameters) if dtype == "auto" else (dtype, "set by the user")
    )
    if user_bind := environ.get(BIND_ENV):
        bind, threads_reason = user_bind, f"{BIND_ENV} set by the user"
        threads = len(parse_cpu_list(user_bind)) if user_bind != "auto" else len(cpu.cores)
    else:
        cores = cpu.cores or (0,)
        bind, threads, threads_reason = format_cpu_list(cores), len(cores), "all usable cores"
    if kv_cache_gib is None:
        kv, kv_reason = choose_kv_cache_gib(
            size, chosen, max_num_seqs, max_model_len, cpu.mem_available
        )
    else:
        kv, kv_reason = kv_cache_gib, "set by the user"
    return EngineSettings(chosen, bind, threads, kv, (dtype_reason, threads_reason, kv_reason), cpu)


def engine_settings(
    model_dir: str | Path, args: Any, log: logging.Logger | None = None
) -> EngineSettings:
    """:func:`choose` for this machine and the model in ``model_dir``; logs the summary on ``log``.

    ``args``: the service's ``BentoArgs`` (``dtype``, ``kv_cache_gib``, ``max_num_seqs``,
    ``max_model_len``).
    """
    settings = choose(read_cpu(), model_size(Path(model_dir)), dtype=args.dtype,
                      kv_cache_gib=args.kv_cache_gib, max_num_seqs=args.max_num_seqs,
                      max_model_len=args.max_model_len)  # fmt: skip
    if log is not None:
        log.info("%s", settings.summary())
    return settings

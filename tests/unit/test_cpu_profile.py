"""The CPU engine's settings follow the CPU (bento/cpu_profile.py), and evaluation agrees.

The CPUs are synthetic ``/proc/cpuinfo`` texts with real flag lines: an AMD EPYC 7B12 (Zen 2,
AVX2 only), an Intel Xeon Platinum 8259CL (Cascade Lake: AVX512 without BF16), an AMD EPYC
9B14 (Zen 4: AVX512-BF16, no AMX; this project's 2-core machine) and an Intel Xeon Platinum
8481C (Sapphire Rapids: AMX).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bento import cpu_profile
from bento.cpu_profile import GIB, CpuInfo, ModelSize
from bento.service import BentoArgs, engine_command
from steps.core import modeling
from steps.core.config import EvalConfig
from steps.core.evaluate.compare import generation_dtype
from steps.core.modeling import cpu_dtype, cpu_flags, parameter_count

_BASE = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx "
         "fxsr sse sse2 ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl nonstop_tsc "
         "cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave "
         "avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch fsgsbase tsc_adjust bmi1 avx2 smep "
         "bmi2")  # fmt: skip
CPUS = {
    "avx2": ("AMD EPYC 7B12", _BASE + " cmp_legacy cr8_legacy sse4a misalignsse osvw topoext "
             "ssbd ibrs ibpb stibp vmmcall rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec "
             "xgetbv1 clzero xsaveerptr arat npt nrip_save umip rdpid", "float32"),
    "avx512": ("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", _BASE + " ss xtopology aperfmperf "
               "pcid x2apic tsc_deadline_timer invpcid_single pti erms invpcid mpx avx512f "
               "avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt "
               "xsavec xgetbv1 xsaves ida arat pku ospke avx512_vnni", "float32"),
    "avx512_bf16": ("AMD EPYC 9B14", _BASE + " cmp_legacy cr8_legacy sse4a misalignsse osvw "
                    "topoext vmmcall erms invpcid avx512f avx512dq rdseed adx smap avx512ifma "
                    "clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 "
                    "xsaves avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni "
                    "vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm",
                    "bfloat16"),
    "amx": ("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", _BASE + " ss xtopology pcid x2apic "
            "invpcid_single ssbd ibrs ibpb stibp ibrs_enhanced hle erms invpcid rtm avx512f "
            "avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl "
            "xsaveopt xsavec xgetbv1 xsaves avx_vnni avx512_bf16 arat avx512vbmi umip pku ospke "
            "waitpkg avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq "
            "la57 rdpid cldemote movdiri movdir64b fsrm md_clear serialize tsxldtrk amx_bf16 "
            "avx512_fp16 amx_tile amx_int8 arch_capabilities", "bfloat16"),
}  # fmt: skip
# Qwen3-1.7B: 28 layers, 8 KV heads of 128; 1.72 B parameters with the embedding tied.
QWEN3_1_7B = ModelSize(parameters=1_720_574_976, layers=28, kv_heads=8, head_dim=128)


def cpuinfo_text(model: str, flags: str, processors: int = 2) -> str:
    block = ("processor\t: {n}\nvendor_id\t: {vendor}\ncpu family\t: 25\nmodel\t\t: 17\n"
             "model name\t: {model}\nstepping\t: 1\ncpu MHz\t\t: 2600.000\ncache size\t: "
             "1024 KB\nflags\t\t: {flags}\nbugs\t\t: sysret_ss_attrs\nbogomips\t: 5200.00\n")
    vendor = "GenuineIntel" if "Intel" in model else "AuthenticAMD"
    return "\n".join(block.format(n=n, vendor=vendor, model=model, flags=flags)
                     for n in range(processors))  # fmt: skip


def cpu(kind: str, cores: tuple[int, ...] = (0, 1), memory: float = 16 * GIB) -> CpuInfo:
    model, flags = cpu_profile.parse_cpuinfo(cpuinfo_text(*CPUS[kind][:2]))
    return CpuInfo(model, flags, cores, int(memory))


@pytest.mark.parametrize("kind", list(CPUS))
def test_the_dtype_follows_the_cpus_bf16_units_and_evaluation_decides_the_same(kind, tmp_path):
    model, flag_line, expected = CPUS[kind]
    (tmp_path / "cpuinfo").write_text(cpuinfo_text(model, flag_line))
    parsed_model, flags = cpu_profile.parse_cpuinfo((tmp_path / "cpuinfo").read_text())
    assert parsed_model == model and "avx2" in flags and len(flags) > 40

    serving, why = cpu_profile.choose_dtype(flags)
    assert serving == expected
    assert ("bf16 units" in why) == (expected == "bfloat16")
    # steps.core cannot import bento: its own check must come to the same answer
    assert cpu_flags(tmp_path / "cpuinfo") == flags
    assert cpu_dtype(flags)[0] == serving
    assert generation_dtype(EvalConfig(), "float16", "cpu", flags) == serving
    # a small model stays in float32 on every CPU, on both sides (the demo's 135M, the tests')
    assert modeling.BF16_MIN_PARAMETERS == cpu_profile.BF16_MIN_PARAMETERS
    for parameters, large in ((135_000_000, False), (1_720_574_976, True), (None, True)):
        wanted = serving if large else "float32"
        assert cpu_profile.choose_dtype(flags, parameters)[0] == wanted
        assert cpu_dtype(flags, parameters)[0] == wanted
        assert generation_dtype(EvalConfig(), "float16", "cpu", flags, parameters) == wanted
    if expected == "bfloat16":
        assert "135M parameters" in cpu_profile.choose_dtype(flags, 135_000_000)[1]


def test_the_cpu_is_read_from_proc_affinity_and_the_cgroup(tmp_path):
    proc, cgroup = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    (proc / "cpuinfo").write_text(cpuinfo_text(*CPUS["amx"][:2], processors=8))
    (proc / "meminfo").write_text("MemTotal:  33554432 kB\nMemAvailable:   16777216 kB\n")

    found = cpu_profile.read_cpu(proc, cgroup, affinity={5, 2, 3})
    assert found.model.startswith("Intel(R) Xeon(R) Platinum 8481C")
    assert found.bf16_units == ["amx_bf16", "amx_tile", "avx512_bf16"]
    assert found.cores == (2, 3, 5) and found.mem_available == 16 * GIB
    assert cpu_profile.format_cpu_list(found.cores) == "2-3,5"
    assert cpu_profile.parse_cpu_list("2-3,5") == [2, 3, 5]

    cgroup.mkdir()  # a container: 1.5 CPUs of quota, 8 GiB of which 2 are used
    (cgroup / "cpu.max").write_text("150000 100000\n")
    (cgroup / "memory.max").write_text(f"{8 * GIB}\n")
    (cgroup / "memory.current").write_text(f"{2 * GIB}\n")
    limited = cpu_profile.read_cpu(proc, cgroup, affinity={5, 2, 3})
    assert limited.cores == (2,) and limited.mem_available == 6 * GIB
    assert "avx2 avx512f avx512_bf16 amx_tile amx_bf16" in limited.describe()


def test_the_model_size_comes_from_config_and_safetensors_headers(tmp_path):
    import torch
    from safetensors.torch import save_file

    config = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
              "num_key_value_heads": 2}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"embed": torch.zeros(10, 64), "norm": torch.zeros(64)}, tmp_path / "a.safetensors")
    save_file({"proj": torch.zeros(64, 32)}, tmp_path / "b.safetensors")
    size = cpu_profile.model_size(tmp_path)
    assert size == ModelSize(parameters=640 + 64 + 2048, layers=2, kv_heads=2, head_dim=16)
    assert size.kv_bytes_per_token("float32") == 2 * 2 * 16 * 2 * 4
    assert size.weights_bytes("bfloat16") == 2 * size.parameters

    assert parameter_count(tmp_path) == size.parameters  # what the evaluate step reads

    (tmp_path / "b.safetensors").write_bytes(b"\0" * 16)  # not a safetensors file
    assert cpu_profile.model_size(tmp_path) is None
    assert cpu_profile.model_size(tmp_path / "missing") is None


def test_the_kv_cache_holds_the_batch_within_half_the_memory_left():
    # Qwen3-1.7B in bf16: 112 KiB of KV per token; 64 x 4096 tokens need 28 GiB
    assert QWEN3_1_7B.kv_bytes_per_token("bfloat16") == 28 * 8 * 128 * 2 * 2
    gib, why = cpu_profile.choose_kv_cache_gib(QWEN3_1_7B, "bfloat16", 64, 4096, 16 * GIB)
    left = 16 * GIB - QWEN3_1_7B.weights_bytes("bfloat16")
    assert gib == int(left / 2 // GIB) == 6
    assert "need 28 GiB" in why and "is 6 GiB" in why
    # float32 doubles the weights and the KV per token: less room
    assert cpu_profile.choose_kv_cache_gib(QWEN3_1_7B, "float32", 64, 4096, 16 * GIB)[0] == 4
    # what the batch needs, when that is less than the cap
    assert cpu_profile.choose_kv_cache_gib(QWEN3_1_7B, "bfloat16", 8, 2048, 64 * GIB)[0] == 2
    # never below 1 GiB, and a machine short of memory is named
    short, why = cpu_profile.choose_kv_cache_gib(QWEN3_1_7B, "float32", 64, 4096, 6 * GIB)
    assert short == 1 and "memory is short" in why
    assert cpu_profile.choose_kv_cache_gib(None, "float32", 64, 4096, 6 * GIB)[0] == 2


@pytest.mark.parametrize("kind", list(CPUS))
def test_every_usable_core_runs_a_thread(kind):
    settings = cpu_profile.choose(cpu(kind, cores=(0, 1, 2, 3)), QWEN3_1_7B, environ={})
    assert settings.dtype == CPUS[kind][2]
    assert (settings.threads, settings.threads_bind) == (4, "0-3")
    assert settings.kv_cache_gib >= 1


def test_explicit_values_win():
    amx = cpu("amx")
    settings = cpu_profile.choose(amx, QWEN3_1_7B, dtype="float32", kv_cache_gib=3,
                                  environ={"VLLM_CPU_OMP_THREADS_BIND": "1"})  # fmt: skip
    assert (settings.dtype, settings.kv_cache_gib) == ("float32", 3)
    assert (settings.threads_bind, settings.threads) == ("1", 1)
    assert settings.reasons == ("set by the user", "VLLM_CPU_OMP_THREADS_BIND set by the user",
                                "set by the user")  # fmt: skip


def _qwen3_dir(tmp_path: Path) -> Path:
    """A model directory whose config and safetensors header say Qwen3-1.7B (no weights)."""
    config = {"num_hidden_layers": 28, "hidden_size": 2048, "num_attention_heads": 16,
              "num_key_value_heads": 8, "head_dim": 128}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    header = json.dumps({"w": {"dtype": "BF16", "shape": [QWEN3_1_7B.parameters],
                               "data_offsets": [0, 0]}}).encode()  # fmt: skip
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    return tmp_path


@pytest.mark.parametrize("kind", ["avx2", "amx"])
def test_the_cpu_bento_starts_with_the_chosen_settings_and_logs_them(kind, tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(cpu_profile, "read_cpu", lambda: cpu(kind, memory=20 * GIB))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("bentoml.service.nizami")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        command = engine_command(BentoArgs(device="cpu"), str(_qwen3_dir(tmp_path)))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    dtype = CPUS[kind][2]
    env = dict(part.split("=", 1) for part in command[4 : command.index("-m") - 1])
    assert command[command.index("--dtype") + 1] == dtype
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == "0-1"
    weights = QWEN3_1_7B.weights_bytes(dtype)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == str(int((20 * GIB - weights) / 2 // GIB))
    lines = [r.getMessage() for r in records if "CPU engine settings" in r.getMessage()]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith(f"CPU engine settings on {CPUS[kind][0]} (avx2")
    assert ("amx_bf16" in line) == (kind == "amx")
    assert f"dtype {dtype} (" in line and "2 thread(s) on cores 0-1 (all usable cores)" in line
    assert f"KV cache {env['VLLM_CPU_KVCACHE_SPACE']} GiB (64 seqs x 4096 tokens" in line


def test_the_gpu_bento_does_not_look_at_the_cpu(monkeypatch):
    def fail():
        raise AssertionError("read_cpu called for a GPU bento")

    monkeypatch.setattr(cpu_profile, "read_cpu", fail)
    command = engine_command(BentoArgs(), "/models/m")
    assert command[command.index("--dtype") + 1] == "auto"

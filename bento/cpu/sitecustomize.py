"""Loaded by every vLLM process on CPU (its directory is put on PYTHONPATH by the service).

On CPUs with AMX, Linux requires a process to request the AMX tile state before its first AMX
instruction. oneDNN does that for plain GEMMs, but vLLM's CPU attention kernel can run first
(with LoRA and bf16), and the engine then dies with SIGILL. ``torch.cpu._init_amx()`` requests
it up front; on CPUs without AMX it does nothing.
"""

try:
    import torch

    torch.cpu._init_amx()
except Exception:  # never break interpreter start-up
    pass

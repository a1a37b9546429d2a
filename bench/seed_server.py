"""The seed's serving design, the baseline of bench/serve_throughput.py.

A FastAPI app that loads the model with transformers and calls ``generate`` for one request at
a time (a lock serializes them; no batching). To let the benchmark measure time to first token,
inter-token latency and tokens over a time window, it streams one line per generated token (its
text, JSON-encoded) as ``generate`` produces it, which is generous to the seed: its
``/generate`` answered only when the whole text was done. A client that goes away stops its
generation at the next token (or before it starts, while it waits for the lock).

  python bench/seed_server.py --model <dir> --port 8100 [--dtype float32] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer


class GenerateRequest(BaseModel):
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(64, ge=1)
    ignore_eos: bool = False


class TokenStream(BaseStreamer, StoppingCriteria):
    """``generate``'s tokens, one line each, onto the event loop's queue; stops when cancelled."""

    def __init__(self, tokenizer, loop: asyncio.AbstractEventLoop) -> None:
        self.tokenizer, self.loop = tokenizer, loop
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.cancelled = threading.Event()
        self._prompt = True  # generate() passes the prompt first

    def _send(self, line: str | None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, line)

    def put(self, value: torch.Tensor) -> None:
        if self._prompt:
            self._prompt = False
            return
        for token in value.reshape(-1).tolist():
            self._send(json.dumps(self.tokenizer.decode([token])) + "\n")

    def end(self) -> None:
        self._send(None)

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool)


def create_app(model_dir: str, dtype: str) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    one_at_a_time = threading.Lock()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/generate_stream")
    async def generate_stream(request: GenerateRequest) -> StreamingResponse:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": request.prompt}], tokenize=False,
            add_generation_prompt=True,
        )  # fmt: skip
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        stream = TokenStream(tokenizer, asyncio.get_running_loop())
        kwargs = dict(
            **inputs, streamer=stream, stopping_criteria=StoppingCriteriaList([stream]),
            do_sample=False,
            max_new_tokens=request.max_tokens,
            min_new_tokens=request.max_tokens if request.ignore_eos else 0,
        )  # fmt: skip

        def run() -> None:
            try:
                with one_at_a_time, torch.inference_mode():
                    if not stream.cancelled.is_set():  # the client may have left while queued
                        model.generate(**kwargs)
            finally:
                stream.end()

        threading.Thread(target=run, daemon=True).start()

        async def lines():
            try:
                while (line := await stream.queue.get()) is not None:
                    yield line
            finally:  # done, or the client went away: stop generating
                stream.cancelled.set()

        return StreamingResponse(lines(), media_type="text/plain")

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    cli = parser.parse_args()
    if cli.threads:
        torch.set_num_threads(cli.threads)
    uvicorn.run(create_app(cli.model, cli.dtype), host="127.0.0.1", port=cli.port, workers=1)

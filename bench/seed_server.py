"""The seed's serving design, the baseline of bench/serve_throughput.py.

A FastAPI app that loads the model with transformers and calls ``generate`` for one request at
a time (a lock serializes them; no batching). To let the benchmark measure time to first token
and inter-token latency, it streams the text as ``generate`` produces it (TextIteratorStreamer),
which is generous to the seed: its ``/generate`` answered only when the whole text was done.

  python bench/seed_server.py --model <dir> --port 8100 [--dtype float32] [--threads N]
"""

from __future__ import annotations

import argparse
import threading

import torch
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer


class GenerateRequest(BaseModel):
    prompt: str = Field(min_length=1)
    max_tokens: int = Field(64, ge=1)
    ignore_eos: bool = False


def create_app(model_dir: str, dtype: str) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).eval()
    one_at_a_time = threading.Lock()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/generate_stream")
    def generate_stream(request: GenerateRequest) -> StreamingResponse:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": request.prompt}], tokenize=False,
            add_generation_prompt=True,
        )  # fmt: skip
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(
            **inputs, streamer=streamer, do_sample=False, max_new_tokens=request.max_tokens,
            min_new_tokens=request.max_tokens if request.ignore_eos else 0,
        )  # fmt: skip

        def run() -> None:
            with one_at_a_time, torch.inference_mode():
                model.generate(**kwargs)

        threading.Thread(target=run, daemon=True).start()
        return StreamingResponse(streamer, media_type="text/plain")

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

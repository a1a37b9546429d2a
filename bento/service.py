"""nizami-1.7b as a BentoML service.

The merged model is baked into the bento as a BentoML model (``BentoArgs.model_tag``), so a
container starts without downloading anything. Build arguments are validated by ``BentoArgs``.
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel, Field


class BentoArgs(BaseModel):
    """Build-time arguments (``bentoml build --arg model_tag=...``)."""

    model_tag: str = "nizami-1.7b:latest"
    max_new_tokens: int = Field(512, gt=0)


args = bentoml.use_arguments(BentoArgs)


class GenerateRequest(BaseModel):
    prompt: str = Field(..., min_length=1)
    max_tokens: int | None = Field(None, gt=0)


@bentoml.service(name="nizami", http={"port": 8000}, traffic={"timeout": 300})
class Nizami:
    model = bentoml.models.BentoModel(args.model_tag)

    def __init__(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model.path)
        self.lm = AutoModelForCausalLM.from_pretrained(self.model.path).eval()

    @bentoml.api
    def generate(self, prompt: str, max_tokens: int | None = None) -> dict[str, str]:
        """The seed's endpoint: ``POST /generate {"prompt"} -> {"text"}`` (greedy)."""
        request = GenerateRequest(prompt=prompt, max_tokens=max_tokens)
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": request.prompt}],
            tokenize=False,
            add_generation_prompt=True,
        )
        inputs = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        output = self.lm.generate(
            **inputs, max_new_tokens=request.max_tokens or args.max_new_tokens, do_sample=False
        )
        new = output[0, inputs["input_ids"].shape[1] :]
        return {"text": self.tokenizer.decode(new, skip_special_tokens=True).strip()}

"""Save a merged model into the BentoML model store and build the bento around it."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import bentoml

BENTO_DIR = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


def save_model(model_dir: Path, name: str, labels: dict[str, str], metadata: dict) -> str:
    """Copy ``model_dir`` into a new BentoML model ``name``; returns its tag."""
    with bentoml.models.create(
        name, labels=labels, metadata=json.loads(json.dumps(metadata, default=str))
    ) as model:
        shutil.copytree(model_dir, model.path, dirs_exist_ok=True)
    log.info("saved BentoML model %s", model.tag)
    return str(model.tag)


def build_bento(name: str, model_tag: str, labels: dict[str, str]) -> str:
    """``bentoml build`` the service in ``bento/`` with ``model_tag`` baked in; returns the tag."""
    bento = bentoml.bentos.build(
        "service:Nizami",
        name=name,
        labels=labels,
        include=["service.py"],
        python={"packages": ["torch", "transformers>=5,<6", "pydantic>=2"], "lock_packages": False},
        docker={"python_version": "3.11"},
        args={"model_tag": model_tag},
        build_ctx=str(BENTO_DIR),
    )
    log.info("built bento %s at %s", bento.tag, bento.path)
    return str(bento.tag)

"""The ``nizami_training`` pipeline: load_data -> train -> evaluate -> register -> package.

Run it with ``zenml pipeline run pipelines.training.training_pipeline -c <run config>`` or
``python -m pipelines.run --config pipelines/configs/<name>.yaml``.
"""

from zenml import Model, pipeline

from steps.core.config import load_config, resolve_path
from steps.evaluate import evaluate
from steps.load_data import load_data
from steps.package import package
from steps.register import register
from steps.train import train

DEFAULT_CONFIG = "pipelines/configs/demo.yaml"


def data_version(config_path: str) -> str:
    """What identifies the data for caching: the DVC pointer's md5, or the pinned revision."""
    import yaml

    cfg = load_config(config_path).data
    if cfg.rev:
        return f"rev:{cfg.rev}"
    path = resolve_path(cfg.path)
    pointer = path.with_name(path.name + ".dvc")
    if pointer.is_file():
        return "md5:" + yaml.safe_load(pointer.read_text())["outs"][0]["md5"]
    import hashlib

    return "file-md5:" + hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else "missing"


@pipeline(name="nizami_training", enable_cache=True)
def training_pipeline(config_path: str = DEFAULT_CONFIG) -> None:
    """Wire the five steps from one validated config (see steps/core/config.py)."""
    cfg = load_config(config_path)
    dataset = load_data(cfg.data, cfg.base_model, cfg.train.max_length, data_version(config_path))
    adapter = train(dataset, cfg.base_model, cfg.lora, cfg.train)
    metrics, _ = evaluate(dataset, adapter, cfg.base_model, cfg.evaluation, cfg.output_dir)
    registration = register.with_options(model=Model(name=cfg.model_name))(metrics, cfg.gate)
    package(adapter, cfg.base_model, cfg.package, registration)

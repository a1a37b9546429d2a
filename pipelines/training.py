"""The ``nizami_training`` pipeline: load_data -> train -> evaluate -> register -> package.

Run it with ``zenml pipeline run pipelines.training.training_pipeline -c <run config>`` or
``python -m pipelines.run --config pipelines/configs/<name>.yaml``.
"""

from zenml import Model, pipeline

from steps.core.config import load_config
from steps.core.data.dataset import data_version
from steps.evaluate import evaluate
from steps.load_data import load_data
from steps.package import package
from steps.register import register
from steps.train import train

DEFAULT_CONFIG = "pipelines/configs/demo.yaml"


# Hooks (pipelines/run_hooks.py): W&B online/offline for this run, the process driving it
# recorded, and this machine's runs that were killed before marked failed.
@pipeline(
    name="nizami_training", enable_cache=True,
    on_init="pipelines.run_hooks.driver_started", on_start="pipelines.run_hooks.step_started",
)
def training_pipeline(config_path: str = DEFAULT_CONFIG) -> None:
    """Wire the five steps from one validated config (see steps/core/config.py)."""
    cfg = load_config(config_path)
    dataset = load_data(cfg.data, cfg.base_model, cfg.train.max_length, data_version(cfg.data))
    adapter = train(dataset, cfg.base_model, cfg.lora, cfg.train)
    metrics, _ = evaluate(dataset, adapter, cfg.base_model, cfg.evaluation, cfg.output_dir)
    registration = register.with_options(model=Model(name=cfg.model_name))(
        adapter, metrics, cfg.gate, cfg.registry, cfg.base_model, cfg.lora, cfg.train
    )
    package(adapter, cfg.base_model, cfg.package, registration)

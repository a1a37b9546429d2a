"""The ZenML model-registry flavor ``huggingface``: the Hugging Face Hub behind ZenML's registry
API. Same shape as ZenML's own integrations and ``kaggle_orchestrator``:

- ``flavors/hf_model_registry_flavor.py``: config and flavor (zenml + pydantic only);
- ``model_registries/hf_model_registry.py``: the ``BaseModelRegistry`` implementation, loaded
  lazily when a stack uses the registry;
- ``client.py``: the Hub as a registry (versions, stages, uploads), plain ``huggingface_hub``;
- ``retry.py``: the retry policy of every Hub call;
- ``model_card.py`` and ``templates/model_card.md``: each version's model card.

Nothing here imports ``steps`` or ``pipelines`` (import-linter checks it).
"""

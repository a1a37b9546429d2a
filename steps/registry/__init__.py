"""The ``huggingface`` model-registry flavor: the Hugging Face Hub behind ZenML's registry API.

``steps.registry.flavor`` imports only zenml and pydantic (registering the flavor stays cheap);
the implementation (``model_registry``) and the Hub logic (``steps.core.hub``) load lazily.
"""

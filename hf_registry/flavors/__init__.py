"""The ``huggingface`` model-registry flavor (zenml + pydantic only; never imports the Hub
client)."""

from hf_registry.flavors.hf_model_registry_flavor import (
    HUGGINGFACE_FLAVOR,
    HuggingFaceModelRegistryConfig,
    HuggingFaceModelRegistryFlavor,
)

__all__ = [
    "HUGGINGFACE_FLAVOR",
    "HuggingFaceModelRegistryConfig",
    "HuggingFaceModelRegistryFlavor",
]

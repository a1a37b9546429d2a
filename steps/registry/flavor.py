"""ZenML flavor ``huggingface`` of the model registry (zenml + pydantic only).

Register it once per ZenML store (``stacks/register.sh`` does)::

    zenml flavor register steps.registry.flavor.HuggingFaceModelRegistryFlavor
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field
from zenml.model_registries.base_model_registry import (
    BaseModelRegistryConfig,
    BaseModelRegistryFlavor,
)
from zenml.utils.secret_utils import SecretField

if TYPE_CHECKING:
    from steps.registry.model_registry import HuggingFaceModelRegistry

FLAVOR_NAME = "huggingface"


class HuggingFaceModelRegistryConfig(BaseModelRegistryConfig):
    """Where the registry lives and how to authenticate.

    Attributes:
        endpoint: Hub URL; an enterprise Hub or a local test server work the same way.
        token: write token. Reference a ZenML secret (``{{huggingface.token}}``); leave it unset
            to use ``HF_TOKEN`` (or a saved ``hf auth login``). Never put the token itself here.
        namespace: user or organisation owning the repos; default: the token's owner. A model
            name that already is ``owner/name`` is used as the repo id as it is.
        private: visibility of repos the registry creates.
    """

    endpoint: str = "https://huggingface.co"
    token: str | None = SecretField(default=None)
    namespace: str | None = Field(None, description="repo owner; default: the token's user")
    private: bool = True

    @property
    def is_local(self) -> bool:
        """A registry on this machine (a local test Hub)."""
        return self.endpoint.startswith(("http://127.0.0.1", "http://localhost"))


class HuggingFaceModelRegistryFlavor(BaseModelRegistryFlavor):
    """Model registry flavor: Hub repo = registered model, tagged commit = version."""

    @property
    def name(self) -> str:
        """The flavor's name in stack definitions."""
        return FLAVOR_NAME

    @property
    def display_name(self) -> str:
        """Name shown in the dashboard."""
        return "Hugging Face Hub"

    @property
    def logo_url(self) -> str:
        """Logo shown in the dashboard."""
        return "https://huggingface.co/front/assets/huggingface_logo-noborder.svg"

    @property
    def config_class(self) -> type[HuggingFaceModelRegistryConfig]:
        """The component's configuration."""
        return HuggingFaceModelRegistryConfig

    @property
    def implementation_class(self) -> type[HuggingFaceModelRegistry]:
        """The registry itself, imported only when a stack uses it."""
        from steps.registry.model_registry import HuggingFaceModelRegistry

        return HuggingFaceModelRegistry

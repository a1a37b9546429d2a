"""The ``huggingface`` model-registry flavor: config and flavor (zenml + pydantic only).

Importing this module never imports ``huggingface_hub`` or torch; the implementation
(``hf_registry.model_registries.hf_model_registry``) is loaded lazily by ZenML when a stack uses
the registry. Every field has a description, which the ZenML dashboard shows. A model registry
has no per-step settings in ZenML, so there is no Settings class: what a run chooses (the
version bump) is a pipeline config value (``registry.bump``).

Register it once per ZenML store (``stacks/register.sh`` does this)::

    zenml model-registry flavor register \
        hf_registry.flavors.hf_model_registry_flavor.HuggingFaceModelRegistryFlavor
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
    from hf_registry.model_registries.hf_model_registry import HuggingFaceModelRegistry

HUGGINGFACE_FLAVOR = "huggingface"


class HuggingFaceModelRegistryConfig(BaseModelRegistryConfig):
    """Where the registry lives and how to authenticate.

    Registered model = Hub repo ``<namespace>/<model name>``; version = one commit tagged
    ``vX.Y``; stage = a tag (``prod`` = Production, ``staging`` = Staging).
    """

    endpoint: str = Field(
        "https://huggingface.co", description="Hub URL; an enterprise Hub or a local test "
        "server work the same way.",
    )
    token: str | None = SecretField(
        default=None, description="Write token. Reference a ZenML secret "
        "({{huggingface.token}}); unset, the registry uses HF_TOKEN (or a saved `hf auth "
        "login`). Never put the token itself here.",
    )
    namespace: str | None = Field(
        None, description="User or organisation owning the repos; null is the token's user. "
        "A model name that already is owner/name is used as the repo id as it is.",
    )
    private: bool = Field(True, description="Visibility of the repos the registry creates.")

    @property
    def is_local(self) -> bool:
        """A registry on this machine (a local test Hub)."""
        return self.endpoint.startswith(("http://127.0.0.1", "http://localhost"))


class HuggingFaceModelRegistryFlavor(BaseModelRegistryFlavor):
    """Model registry flavor: Hub repo = registered model, tagged commit = version."""

    @property
    def name(self) -> str:
        """The flavor name used in stack YAML (``flavor: huggingface``)."""
        return HUGGINGFACE_FLAVOR

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
        """The component config."""
        return HuggingFaceModelRegistryConfig

    @property
    def implementation_class(self) -> type[HuggingFaceModelRegistry]:
        """The registry, imported only when a stack uses it."""
        from hf_registry.model_registries.hf_model_registry import HuggingFaceModelRegistry

        return HuggingFaceModelRegistry

"""The ``kaggle`` step-operator flavor: settings, config and flavor (zenml + pydantic only).

Importing this module never imports the ``kaggle`` client or torch; the implementation
(``kaggle_orchestrator.step_operators.kaggle_step_operator``) is loaded lazily by ZenML when a
step runs. Every field has a description, which the ZenML dashboard shows.

Register it once per ZenML store (``stacks/register.sh`` does this)::

    zenml step-operator flavor register \
        kaggle_orchestrator.flavors.kaggle_step_operator_flavor.KaggleStepOperatorFlavor
"""

from __future__ import annotations

import importlib
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from zenml.config.base_settings import BaseSettings
from zenml.step_operators import BaseStepOperator, BaseStepOperatorConfig, BaseStepOperatorFlavor
from zenml.utils.secret_utils import SecretField

from kaggle_orchestrator.checkpoint_contract import MARKER

KAGGLE_FLAVOR = "kaggle"
STANDALONE = "standalone"  # the default mode: ZenML's entrypoint here, the step call on Kaggle
SERVER = "server"  # the mode whose kernel runs ZenML's own step entrypoint
# Choices of the step operator as a whole (its config), refused in a step's settings.
OPERATOR_WIDE = ("mode", "packages", "resume_marker")
IMPLEMENTATION = "kaggle_orchestrator.step_operators.kaggle_step_operator"
# True while the operator lays its own config under a step's settings (ZenML's get_settings).
MERGING_OPERATOR_CONFIG: ContextVar[bool] = ContextVar("kaggle_config_merge", default=False)
# Accelerators Kaggle's API accepts for `machine_shape` (kaggle-cli docs, Sep 2026).
# "NvidiaTeslaT4" is the free "GPU T4 x2"; None runs on CPU.
MachineShape = Literal[
    "NvidiaTeslaT4", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaA100", "NvidiaH100", "NvidiaRtxPro6000"
]
# The training stack the kernel pins (same versions as this environment); Kaggle's image
# keeps its own CUDA torch.
DEFAULT_KERNEL_PACKAGES = (
    "zenml",
    "transformers",
    "tokenizers",
    "safetensors",
    "peft",
    "accelerate",
    "datasets",
    "wandb",
    "pydantic",
)


class OperatorSettingError(RuntimeError):
    """A step's settings set what only the step operator's config chooses. Not a ValueError:
    ZenML would replace pydantic's message with its own, which does not say what to do."""


class KaggleStepOperatorSettings(BaseSettings):
    """Per-step knobs (``settings: {"step_operator": {...}}`` in a run config). The mode, the
    kernel's packages and the resume marker are the operator's (``OPERATOR_WIDE``)."""

    machine_shape: MachineShape | None = Field(
        "NvidiaTeslaT4", description="Kaggle accelerator (NvidiaTeslaT4 = the free 'GPU T4 x2'); "
        "null runs the kernel on CPU.",
    )
    enable_internet: bool = Field(
        True, description="Internet in the kernel: needed to pip-install what Kaggle's image "
        "lacks and to download a base model from the Hugging Face Hub.",
    )
    timeout_s: float = Field(
        4 * 3600, gt=0, le=12 * 3600, description="Wall-clock limit of one kernel version, "
        "queueing included; past it the kernel is deleted (Kaggle's own limit did not stop "
        "wedged kernels).",
    )
    poll_interval_s: float = Field(
        30.0, gt=0, description="Seconds between status polls; backs off to 4x while the log "
        "is quiet. Log lines arrive live whatever this is.",
    )
    slug_prefix: str = Field(
        "nizami", pattern=r"^[a-z0-9][a-z0-9-]{1,30}$",
        description="Kernel and bundle-dataset slug prefix; the step name and run id follow it.",
    )
    extra_requirements: tuple[str, ...] = Field(
        (), description="Further requirements for the kernel, pinned (name==version).",
    )
    dataset_sources: tuple[str, ...] = Field(
        (), description="Kaggle datasets (owner/slug) to attach read-only.",
    )
    model_sources: tuple[str, ...] = Field(
        (), description="Kaggle models (owner/model/framework/variation/version) to attach.",
    )
    max_attempts: int = Field(
        3, ge=1, le=10, description="Kernel versions one step run may use: when a version "
        "ends in ERROR, times out or is stopped by Kaggle after saving a checkpoint, the next "
        "attaches its output and resumes from it.",
    )
    keep: bool = Field(
        False, description="Standalone mode: keep the step's kernel (all its versions) and "
        "bundle dataset on Kaggle after the step succeeded. By default they are deleted once "
        "the outputs are safe here; a failed step's are kept for inspection (`make "
        "kaggle-clean` lists and removes leftovers).",
    )
    @model_validator(mode="before")
    @classmethod
    def _no_operator_choice(cls, data: Any) -> Any:
        if issubclass(cls, BaseStepOperatorConfig) or MERGING_OPERATOR_CONFIG.get():
            return data
        given = sorted(set(data) & set(OPERATOR_WIDE)) if isinstance(data, dict) else []
        if given:
            raise OperatorSettingError(
                f"{', '.join(given)} in a step's step_operator settings: the kaggle step "
                "operator chooses these once, for every step it runs. Remove them from the "
                "step's settings and set them on the operator (`zenml step-operator update "
                f"<name> --{given[0]}=...`), or register a second kaggle step operator and "
                "select it with `step_operator: <its name>` on the step; what one step needs "
                "beyond the operator's packages goes in `settings: docker: requirements: [...]`."
            )
        return data

    @field_validator("extra_requirements")
    @classmethod
    def _pinned(cls, requirements: tuple[str, ...]) -> tuple[str, ...]:
        loose = [r for r in requirements if "==" not in r]
        if loose:
            raise ValueError(f"kernel requirements must be pinned with '==': {loose}")
        return requirements


class KaggleStepOperatorConfig(BaseStepOperatorConfig, KaggleStepOperatorSettings):
    """Credentials and defaults of one registered ``kaggle`` step operator.

    Credentials, in this order (``kaggle_orchestrator/credentials.py``): ``api_token`` here (use
    a ``{{secret.key}}`` reference), ``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``, then the
    legacy ``username``/``key`` (here, ``KAGGLE_USERNAME``/``KAGGLE_KEY``, ``kaggle.json``). The
    step log says which one was used. They are only ever used on this machine: nothing that
    runs on Kaggle receives them.
    """

    api_token: str | None = SecretField(
        default=None, description="Kaggle API token (new accounts; sent as Bearer). Use a "
        "ZenML secret reference: {{kaggle.token}}.",
    )
    username: str | None = SecretField(
        default=None, description="Kaggle user name; with a token, the token's owner must be "
        "this user.",
    )
    key: str | None = SecretField(default=None, description="Legacy Kaggle API key.")
    kernel_api_key: str | None = SecretField(
        default=None, description="Server mode: API key of a dedicated ZenML service account "
        "for the kernels (one that owns no private secret). The kernel's token is minted for "
        "it, scoped to the run, expiring timeout_s + 15 min after the push. Use a private "
        "secret of the runner's account: {{kaggle_kernel.api_key}} (docs/secrets.md). Unset, "
        "the kernel's token is the runner's account's.",
    )
    api_endpoint: str | None = Field(
        None, description="Base URL of a Kaggle-compatible API; null is Kaggle. Point it at "
        "`python -m kaggle_emulator` to dry-run without spending quota.",
    )
    request_timeout_s: float = Field(
        60.0, gt=0, description="Timeout of every HTTP call to the Kaggle API.",
    )
    max_retries: int = Field(
        5, ge=0, description="Retries of a call answered 429/5xx, or a connection error.",
    )
    max_gpu_sessions: int = Field(
        2, ge=1, description="Kaggle's limit of concurrent GPU sessions per account.",
    )
    mode: Literal["standalone", "server"] = Field(
        STANDALONE, description="standalone: ZenML's entrypoint runs here and only the step "
        "function runs on Kaggle (no ZenML server needed). server: the kernel runs ZenML's own "
        "step entrypoint against a ZenML server and a remote artifact store (code as ZenML's "
        "code archive; only the run-scoped token travels). Chosen per step operator, not per "
        "step: register one operator per mode to mix them.",
    )
    packages: tuple[str, ...] = Field(
        DEFAULT_KERNEL_PACKAGES, description="Distributions every kernel of this operator pins "
        "to this environment's versions (installed there only where Kaggle's image differs). "
        "What one step needs beyond them: its Docker settings' requirements (settings: docker: "
        "requirements: [...]), pinned the same way.",
    )
    resume_marker: str = Field(
        MARKER, description="The file whose presence under a failed version's "
        "/kaggle/working/checkpoints means there is something to resume from (the training "
        "code's marker: kaggle_orchestrator/checkpoint_contract.py).",
    )

    @property
    def is_remote(self) -> bool:
        """In server mode: ZenML's entrypoint runs on Kaggle and needs a ZenML server. In
        standalone mode ZenML's entrypoint runs here, only the step call is remote."""
        return self.mode == SERVER

    @property
    def is_local(self) -> bool:
        """False: the step's work happens on Kaggle."""
        return False


class KaggleStepOperatorFlavor(BaseStepOperatorFlavor):
    """Runs a step's function in a private Kaggle GPU kernel."""

    @property
    def name(self) -> str:
        """The flavor name used in stack YAML (``flavor: kaggle``)."""
        return KAGGLE_FLAVOR

    @property
    def config_class(self) -> type[KaggleStepOperatorConfig]:
        """The component config."""
        return KaggleStepOperatorConfig

    @property
    def implementation_class(self) -> type[BaseStepOperator]:
        """The step operator, imported only when a step runs (by its module's name, as ZenML
        loads sources: the flavor module imports nothing of the implementation)."""
        return importlib.import_module(IMPLEMENTATION).KaggleStepOperator

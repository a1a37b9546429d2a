"""Server mode: the Kaggle kernel runs ZenML's own step entrypoint against a ZenML server.

``ServerSubmission`` is the operator's strategy in this mode, ZenML 0.98's way for a step operator
without Docker: ``docker_builds`` returns a build entry with ``skip_build`` (nothing is built), so
ZenML uploads the project's code archive to the artifact store and the entrypoint in the kernel
downloads it. ``submit`` pushes a private kernel whose source is ``kernel_entry.py`` (finds the
bundle, pip-installs the pinned requirements that Kaggle's image lacks, runs
``entrypoint_command``); ``wait`` follows it with live logs; the kernel's ZenML loads the inputs
from the artifact store, runs the step, stores and publishes the outputs itself. The artifact
store's credentials are a ZenML secret the kernel resolves from the server; secrets private to the
runner's account (HF, W&B) it cannot read.

**The one credential that travels** is a ZenML API token (``ZENML_STORE_API_TOKEN`` in
``environment``), minted in ``kernel_token.py``: for the operator's dedicated service account
(``kernel_api_key``; else the runner's account, as ZenML mints it), scoped to the pipeline run
(the server stops accepting it once the run has finished, after its
``ZENML_WORKLOAD_TOKEN_EXPIRATION_LEEWAY``) and expiring ``timeout_s`` + 15 min after the push.
``submit`` checks its claims and refuses any other kind. It is not written into the kernel
source, which Kaggle keeps with every version forever, but into ``environment.json`` of the
step's private bundle dataset. The trade-off: for as long as that dataset exists, anyone with
access to the Kaggle account can read a token valid while the run lasts; the operator deletes
the dataset when the step ends (completed, failed, timed out or interrupted), and the kernel
deletes its unpacked copy before the step starts. Variables that look like other credentials
are refused rather than shipped.
"""

from __future__ import annotations

import json
import logging
import re
import tarfile
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from packaging.requirements import InvalidRequirement, Requirement
from zenml.client import Client
from zenml.config.build_configuration import BuildConfiguration
from zenml.constants import METADATA_ORCHESTRATOR_RUN_ID, METADATA_ORCHESTRATOR_URL
from zenml.enums import ExecutionStatus
from zenml.metadata.metadata_types import Uri
from zenml.orchestrators.publish_utils import publish_step_run_metadata, step_exception_info
from zenml.stack import StackValidator
from zenml.utils import exception_utils

from kaggle_orchestrator import kernel
from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import SERVER
from kaggle_orchestrator.stack_check import server_mode_problem
from kaggle_orchestrator.step_operators import kernel_token
from kaggle_orchestrator.step_operators.submission import Submission

if TYPE_CHECKING:  # the Kaggle client is imported where it is used: the kernel's ZenML
    # instantiates this operator too, and has neither the kaggle client nor tenacity
    from zenml.config import DockerSettings
    from zenml.config.step_run_info import StepRunInfo
    from zenml.models import PipelineSnapshotBase, StepRunResponse
    from zenml.stack import Stack
    from zenml.step_operators.step_operator_entrypoint_configuration import (
        StepOperatorEntrypointConfiguration,
    )

    from kaggle_orchestrator.client import KaggleClient
    from kaggle_orchestrator.flavors import KaggleStepOperatorSettings

log = logging.getLogger(__name__)

BUILD_KEY = "kaggle_step_operator"
# The build entry's "image": nothing is built or pulled; it names what the kernel runs on.
KAGGLE_IMAGE = "gcr.io/kaggle-gpu-images/python"
TOKEN = "ZENML_STORE_API_TOKEN"
METADATA = "kaggle"  # the step run's metadata key, as in standalone mode
# The kernel's W&B runs (an offline tracker's) stay in its output, not in /app.
KERNEL_EXTRA_ENV = {"WANDB_DIR": "/kaggle/working"}
# ZenML's own variables: the token, and the switch that keeps credentials off disk there.
_NOT_CREDENTIALS = {TOKEN, "DISABLE_CREDENTIALS_DISK_CACHING"}
_SECRET_WORDS = {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "CREDENTIALS", "KEY"}
_STATUSES = {
    "QUEUED": ExecutionStatus.QUEUED,
    "RUNNING": ExecutionStatus.RUNNING,
    "COMPLETE": ExecutionStatus.COMPLETED,
    "ERROR": ExecutionStatus.FAILED,
    "CANCEL_REQUESTED": ExecutionStatus.STOPPING,
    "CANCEL_ACKNOWLEDGED": ExecutionStatus.STOPPED,
}
_clients: dict[UUID, KaggleClient] = {}


class ServerModeError(RuntimeError):
    """Server mode cannot run this step as configured; the message says what to change."""


# -- before the run ---------------------------------------------------------------------------


def pin(requirement: str) -> str | None:
    """``name[extras]==<version installed here>``; as written if it is not installed here;
    None if its environment marker excludes this platform."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as error:
        raise ServerModeError(f"kernel requirement {requirement!r}: {error}") from error
    if parsed.marker is not None and not parsed.marker.evaluate():
        return None
    try:
        version = metadata.version(parsed.name)
    except metadata.PackageNotFoundError:
        log.warning("kernel requirement %s is not installed here: not pinned", requirement)
        return requirement
    extras = f"[{','.join(sorted(parsed.extras))}]" if parsed.extras else ""
    return f"{parsed.name}{extras}=={version}"


def kernel_requirements(docker_settings: DockerSettings, stack: Stack, packages: Iterable[str],
                        extra_requirements: Iterable[str]) -> list[str]:
    """What the kernel needs, pinned to this environment's versions: the operator's
    ``packages``, every stack component's requirements and the step's Docker requirements
    (as ZenML gathers them for an image), then ``extra_requirements``; one line per name."""
    from zenml.utils.pipeline_docker_image_builder import PipelineDockerImageBuilder

    files = PipelineDockerImageBuilder.gather_requirements_files(docker_settings, stack, log=False)
    gathered = [line.strip() for _, content, _ in files for line in content.splitlines()]
    wanted = [*packages, *(r for r in gathered if r and not r.startswith(("#", "-")))]
    pinned: dict[str, str] = {}
    for requirement in [*(pin(r) for r in wanted), *extra_requirements]:
        if requirement:
            name = re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
            pinned[name] = requirement  # extra_requirements come last and win
    return list(pinned.values())


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a ZenML API token (a JWT), read without verifying it."""
    try:
        return kernel_token.token_claims(token)
    except kernel_token.KernelTokenError as error:
        raise ServerModeError(str(error)) from error


def kernel_environment(environment: dict[str, str], run_id: UUID) -> dict[str, str]:
    """The step environment the kernel gets; the API token must be scoped to this run.

    Raises:
        ServerModeError: A variable looks like a credential, or the token is not scoped to
            the pipeline run.
    """
    credential_like = sorted(
        name for name in environment if name not in _NOT_CREDENTIALS
        and set(re.split(r"[^A-Z0-9]+", name.upper())) & _SECRET_WORDS
    )
    if credential_like:
        raise ServerModeError(
            f"the step environment holds {', '.join(credential_like)}, which look like "
            "credentials: server mode ships only the run-scoped ZenML token to Kaggle. Keep "
            "them in a ZenML secret instead (`zenml secret create <name> ...`, then "
            "`secrets: [<name>]` on the step or `{{<name>.<key>}}` in a component's config): "
            "the kernel resolves it from the server."
        )
    token = environment.get(TOKEN)
    if token is not None and token_claims(token).get("pipeline_run_id") != str(run_id):
        raise ServerModeError(
            "the ZenML API token for the step is not scoped to its pipeline run (is "
            "ZENML_PIPELINE_RUN_API_TOKEN_EXPIRATION set?): unset it, so that no token that "
            "outlives the run is stored on Kaggle."
        )
    return dict(environment)


def _upload_bundle(client: KaggleClient, names: kernel.KernelNames, env: dict[str, str],
                   info: StepRunInfo, scratch: Path) -> None:
    """The private bundle dataset: a manifest and the step environment (with the token)."""
    source = scratch / "bundle"
    source.mkdir()
    manifest = {"mode": SERVER, "step": info.pipeline_step_name, "run": info.run_name}
    (source / "manifest.json").write_text(json.dumps(manifest))
    (source / kernel.ENVIRONMENT_FILE).write_text(json.dumps(env))
    folder = scratch / "dataset"
    folder.mkdir()
    with tarfile.open(folder / kernel.BUNDLE_FILE, "w:gz") as tar:
        tar.add(source, arcname=".")
    (folder / "dataset-metadata.json").write_text(
        json.dumps(kernel.dataset_metadata(client.username, names))
    )
    client.create_dataset(folder)
    client.wait_dataset_ready(f"{client.username}/{names.dataset}")


def _push(client: KaggleClient, names: kernel.KernelNames, settings: KaggleStepOperatorSettings,
          requirements: list[str], command: list[str], folder: Path) -> int:
    folder.mkdir()
    (folder / "kernel.py").write_text(kernel.kernel_script(
        client.username, names, requirements, command=command, env=KERNEL_EXTRA_ENV
    ))
    meta = kernel.kernel_metadata(
        client.username, names, settings.machine_shape, settings.enable_internet,
        settings.dataset_sources, settings.model_sources,
    )
    (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
    return client.push(folder, names.kernel, int(settings.timeout_s))


def _record(step_run: StepRunResponse, required: bool = True) -> dict[str, Any] | None:
    """Where the step's kernel runs (the metadata ``submit`` recorded); None if ``submit``
    pushed nothing and ``required`` is false."""
    record = step_run.run_metadata.get(METADATA)
    if isinstance(record, dict) and record.get("mode") == SERVER:
        return record
    if required:
        raise ServerModeError(f"step run {step_run.id} was not submitted in server mode (no "
                              f"'{METADATA}' metadata of a server-mode kernel)")
    return None


class ServerSubmission(Submission):
    """The kernel runs ZenML's own step entrypoint; this side pushes, follows and cleans up."""

    @property
    def entrypoint_config_class(self) -> type[StepOperatorEntrypointConfiguration]:
        """ZenML's own step-operator entrypoint (it runs in the kernel)."""
        from zenml.step_operators.step_operator_entrypoint_configuration import (
            StepOperatorEntrypointConfiguration,
        )

        return StepOperatorEntrypointConfiguration

    def validator(self) -> StackValidator:
        """Refuses a local artifact store or a local ZenML store, saying what to do instead
        (the rule of ``kaggle_orchestrator.stack_check``, which ``stacks/register.sh`` runs)."""
        name = self.operator.name

        def check(stack: Stack) -> tuple[bool, str]:
            store, zen_store = stack.artifact_store, Client().zen_store
            problem = server_mode_problem(
                name, stack.name, store.name, store.config.is_local, store.path,
                zen_store.is_local_store(), zen_store.url,
            )
            return not problem, problem

        return StackValidator(custom_validation_function=check)

    def docker_builds(self, snapshot: PipelineSnapshotBase) -> list[BuildConfiguration]:
        """One ``skip_build`` entry per step on this operator (the code archive is uploaded,
        nothing is built)."""
        builds = []
        for name, step in snapshot.step_configurations.items():
            if step.config.uses_step_operator(self.operator.name):
                docker = step.config.docker_settings.model_copy(
                    update={"skip_build": True, "parent_image": KAGGLE_IMAGE}
                )
                builds.append(BuildConfiguration(key=BUILD_KEY, settings=docker, step_name=name))
        return builds

    def _client(self) -> KaggleClient:
        operator_id = self.operator.id
        if operator_id not in _clients:
            from kaggle_orchestrator.client import make_client

            _clients[operator_id] = make_client(self.operator.config)
        return _clients[operator_id]

    def _kernel_token(self, run_id: UUID, runner_token: str | None, timeout_s: float) -> str:
        """The kernel's token (``kernel_token.py``): the dedicated account's if configured."""
        store = Client().zen_store
        api_key = self.operator.config.kernel_api_key
        if not api_key:
            log.warning("the step operator '%s' has no kernel_api_key: the kernel's ZenML token "
                        "is the runner's account's, which can read that account's private "
                        "secrets too (docs/secrets.md, 'The kernel's ZenML token')",
                        self.operator.name)
        try:
            return kernel_token.kernel_token(
                store.url, run_id, int(timeout_s) + kernel_token.MARGIN_S, runner_token,
                api_key, store.config.verify_ssl,
            )
        except kernel_token.KernelTokenError as error:
            raise ServerModeError(f"the kernel's ZenML token: {error}") from error

    def submit(self, info: StepRunInfo, entrypoint_command: list[str],
               environment: dict[str, str]) -> None:
        """Upload the bundle (the step environment), push the kernel, record where it runs."""
        from kaggle_orchestrator.client import check_capacity

        config, settings = self.operator.config, self.operator.get_settings(info)
        if not settings.enable_internet:
            raise ServerModeError(
                f"step {info.pipeline_step_name}: server mode needs the kernel's internet (to "
                "reach the ZenML server and the artifact store): set enable_internet: true"
            )
        env = kernel_environment(environment, info.run_id)
        if TOKEN in env or config.kernel_api_key:
            env[TOKEN] = self._kernel_token(info.run_id, env.get(TOKEN), settings.timeout_s)
        requirements = kernel_requirements(info.config.docker_settings, Client().active_stack,
                                           config.packages, settings.extra_requirements)
        client = self._client()
        check_capacity(client, settings.machine_shape, config.max_gpu_sessions)
        names = kernel.KernelNames.for_step_run(settings.slug_prefix, info.pipeline_step_name,
                                                info.step_run_id)
        dataset = f"{client.username}/{names.dataset}"
        info.force_write_logs()
        with tempfile.TemporaryDirectory(prefix="nizami-kaggle-") as scratch:
            try:
                _upload_bundle(client, names, env, info, Path(scratch))
                version = _push(client, names, settings, requirements, entrypoint_command,
                                Path(scratch) / "kernel")
            except BaseException:
                client.delete_dataset(dataset)  # it holds the token
                raise
        url = client.kernel_url(names.kernel)
        record = {
            "mode": SERVER, "kernel_url": Uri(url), "kernel_slug": names.kernel,
            "kernel_version": version, "bundle_dataset": dataset,
            "machine_shape": settings.machine_shape or "CPU", "requirements": requirements,
        }
        ref = f"{client.username}/{names.kernel}/{version}"
        metadata_ = {METADATA: record, METADATA_ORCHESTRATOR_URL: Uri(url),
                     METADATA_ORCHESTRATOR_RUN_ID: ref}
        publish_step_run_metadata(info.step_run_id, {self.operator.id: metadata_})
        info.step_run.run_metadata.update(metadata_)  # get_status works before a refetch
        log.info("step %s runs in private Kaggle kernel %s version %d (%s, server mode): %s",
                 info.pipeline_step_name, names.kernel, version,
                 settings.machine_shape or "CPU", url)

    def get_status(self, step_run: StepRunResponse) -> ExecutionStatus:
        """The kernel version's Kaggle status as ZenML's."""
        record = _record(step_run)
        client = self._client()
        status, _ = client.status(f"{client.username}/{record['kernel_slug']}/"
                                  f"{record['kernel_version']}")
        return _STATUSES.get(status, ExecutionStatus.RUNNING)

    def wait(self, step_run: StepRunResponse) -> ExecutionStatus:
        """Follow the kernel to its end with its log lines in the step log (``follow.py``).

        A kernel that ended in ERROR before ZenML's step runner could say why (an install that
        failed, a timeout, Ctrl-C) fails the step with the kernel URL, Kaggle's message and the
        log tail; after the step itself failed there, ZenML reports the step's own exception.
        """
        from kaggle_orchestrator.follow import KernelFailedError, follow_kernel

        record = _record(step_run)
        settings = self.operator.get_settings(step_run)
        client = self._client()
        ref = f"{client.username}/{record['kernel_slug']}/{record['kernel_version']}"
        try:
            follow_kernel(client, record["kernel_slug"], ref, str(record["kernel_url"]),
                          settings.timeout_s, settings.poll_interval_s)
        except KernelFailedError as failure:
            if Client().get_run_step(step_run.id).exception_info is not None:
                log.error("%s", failure)
                return ExecutionStatus.FAILED
            step_exception_info.set(exception_utils.collect_exception_information(failure))
            raise
        return ExecutionStatus.COMPLETED

    def cancel(self, step_run: StepRunResponse) -> None:
        """Delete the kernel: Kaggle's only reliable stop (nothing to do if none was pushed)."""
        record = _record(step_run, required=False)
        if record is None:
            return
        log.warning("cancelling: deleting Kaggle kernel %s", record["kernel_slug"])
        self._client().delete(record["kernel_slug"], missing_ok=True)

    def cleanup(self, step_run: StepRunResponse) -> None:
        """Delete the bundle dataset (it holds the run-scoped token) however the step ended."""
        from kaggle_orchestrator.client import KaggleApiError

        record = _record(step_run, required=False)
        if record is None:  # submit failed before it pushed: it deleted what it uploaded
            return
        dataset = record["bundle_dataset"]
        try:
            self._client().delete_dataset(dataset)
        except KaggleApiError as error:
            log.error("could not delete the bundle dataset %s, which holds the step's "
                      "run-scoped ZenML token: delete it yourself (`kaggle datasets delete "
                      "%s`): %s", dataset, dataset, error)
            return
        log.info("deleted the bundle dataset %s", dataset)

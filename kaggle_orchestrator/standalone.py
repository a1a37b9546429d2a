"""Standalone mode: ZenML's step entrypoint runs here, only the step *call* runs on Kaggle.

The step operator starts ``StandaloneEntrypointConfiguration`` as a local process. Its
``KernelStepRunner`` is ZenML's ``StepRunner`` (inputs loaded from the artifact store, outputs
stored and published, step logs, hooks, the experiment tracker) except that the loaded step's
``call_entrypoint`` is ``KernelStepCall``: it writes the inputs with their materializers into a
bundle, ships bundle + project code as a private Kaggle dataset, pushes a private kernel that
runs the function, follows it, downloads the outputs and hands them back to ZenML. No ZenML
server, remote artifact store or credential is needed on Kaggle.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict
from zenml import get_step_context, log_metadata
from zenml.client import Client
from zenml.config.step_run_info import StepRunInfo
from zenml.entrypoints.step_entrypoint_configuration import STEP_NAME_OPTION
from zenml.metadata.metadata_types import Uri
from zenml.orchestrators import input_utils, output_utils
from zenml.orchestrators.step_runner import StepRunner
from zenml.step_operators.step_operator_entrypoint_configuration import (
    StepOperatorEntrypointConfiguration,
)
from zenml.utils import pydantic_utils, source_utils

from kaggle_orchestrator import bundle as values
from kaggle_orchestrator import kernel
from kaggle_orchestrator.client import KaggleApiError, KaggleClient, resolve_credentials

if TYPE_CHECKING:
    from zenml.config.step_configurations import Step
    from zenml.models import PipelineSnapshotResponse

    from kaggle_orchestrator.flavor import KaggleStepOperatorConfig, KaggleStepOperatorSettings

log = logging.getLogger(__name__)
_sleep = time.sleep  # the poll loop's wait (tests interrupt it here, not in the time module)


class KernelFailedError(RuntimeError):
    """The Kaggle kernel ended in ERROR/CANCEL, timed out, or left no outputs."""


class KaggleCapacityError(RuntimeError):
    """No GPU quota left, or the account already runs its maximum of GPU sessions."""


def make_client(config: KaggleStepOperatorConfig) -> KaggleClient:
    """The one place a Kaggle client is built (tests point ``api_endpoint`` at the emulator)."""
    return KaggleClient(
        resolve_credentials(config.username, config.key),
        endpoint=config.api_endpoint,
        timeout_s=config.request_timeout_s,
        max_retries=config.max_retries,
    )


class KernelStepCall:
    """Replaces a step's ``call_entrypoint``: the function runs in a Kaggle kernel."""

    def __init__(self, step: Step, entrypoint: Any, config: KaggleStepOperatorConfig,
                 settings: KaggleStepOperatorSettings, tracker: dict | None) -> None:
        self.step = step
        self.entrypoint = entrypoint
        self.config = config
        self.settings = settings
        self.tracker = tracker

    def __call__(self, **params: Any) -> Any:
        # Parameters arrive as plain JSON values (ZenML validates them in call_entrypoint):
        # validate here so each is saved with the materializer of its annotated type.
        params = pydantic_utils.validate_function_args(
            self.entrypoint, ConfigDict(arbitrary_types_allowed=True), **params
        )
        context = get_step_context()
        names = kernel.KernelNames.for_step_run(
            self.settings.slug_prefix, context.step_run.name, context.step_run.id
        )
        client = make_client(self.config)
        self._check_capacity(client)
        with tempfile.TemporaryDirectory(prefix="nizami-kaggle-") as scratch:
            scratch = Path(scratch)
            self._upload_bundle(client, names, params, context, scratch)
            version = self._push(client, names, scratch / "kernel")
            ref = f"{client.username}/{names.kernel}/{version}"
            url = client.kernel_url(names.kernel)
            log_metadata(metadata={"kaggle": {
                "kernel_url": Uri(url), "kernel_slug": names.kernel, "kernel_version": version,
                "bundle_dataset": f"{client.username}/{names.dataset}",
                "machine_shape": self.settings.machine_shape or "CPU",
            }})
            follow_kernel(client, names, ref, url, self.settings)
            return self._collect(client, ref, scratch / "output")

    # -- before the push ------------------------------------------------------------------

    def _check_capacity(self, client: KaggleClient) -> None:
        if self.settings.machine_shape is None:
            return
        left = client.gpu_quota_left_s()
        if left <= 0:
            raise KaggleCapacityError(
                "Kaggle GPU quota exhausted for this week "
                f"({-left / 3600:.1f} h over); nothing was pushed. Wait for the weekly refresh "
                "(`kaggle quota`) or run the step on CPU (machine_shape: null)."
            )
        busy = client.running_gpu_kernels()
        if len(busy) >= self.config.max_gpu_sessions:
            raise KaggleCapacityError(
                f"Kaggle allows {self.config.max_gpu_sessions} concurrent GPU sessions and "
                f"these are running: {', '.join(busy)}; nothing was pushed. Wait for one to "
                "finish or delete it (`kaggle kernels delete <ref>`)."
            )
        log.info("Kaggle GPU quota left: %.1f h; GPU sessions running: %d", left / 3600, len(busy))

    def _upload_bundle(self, client: KaggleClient, names: kernel.KernelNames,
                       params: dict[str, Any], context: Any, scratch: Path) -> None:
        bundle_dir = scratch / "bundle"
        outputs = self.step.config.outputs
        manifest = {
            "step_source": self.step.spec.source.import_path,
            "inputs": values.save_values(params, bundle_dir / "inputs"),
            "outputs": list(outputs),
            "output_materializers": {
                name: [s.import_path for s in output.materializer_source]
                for name, output in outputs.items()
            },
            # What the kernel's offline W&B run needs; never the API key.
            "wandb": self.tracker and {
                **{k: v for k, v in self.tracker.items() if k != "api_key"},
                "run_name": f"{context.pipeline_run.name}_{context.step_run.name}",
            },
        }
        values.write_manifest(bundle_dir, manifest)
        dataset_dir = scratch / "dataset"
        dataset_dir.mkdir()
        size = values.pack(bundle_dir, Path(source_utils.get_source_root()),
                           dataset_dir / kernel.BUNDLE_FILE)
        (dataset_dir / "dataset-metadata.json").write_text(
            json.dumps(kernel.dataset_metadata(client.username, names))
        )
        ref = f"{client.username}/{names.dataset}"
        log.info("uploading inputs + code (%.1f MB) as private dataset %s", size / 1e6, ref)
        client.create_dataset(dataset_dir)
        client.wait_dataset_ready(ref)

    def _push(self, client: KaggleClient, names: kernel.KernelNames, folder: Path) -> int:
        folder.mkdir()
        requirements = kernel.pinned_requirements(
            self.settings.packages, self.settings.extra_requirements
        )
        (folder / "kernel.py").write_text(kernel.kernel_script(names, requirements))
        meta = kernel.kernel_metadata(
            client.username, names, self.settings.machine_shape, self.settings.enable_internet,
            self.settings.dataset_sources, self.settings.model_sources,
        )
        (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
        version = client.push(folder, names.kernel, int(self.settings.timeout_s))
        log.info("pushed private kernel %s version %d (%s)", names.kernel, version,
                 self.settings.machine_shape or "CPU")
        return version

    # -- while it runs ----------------------------------------------------------------------

    # -- after it finished ------------------------------------------------------------------

    def _collect(self, client: KaggleClient, ref: str, out: Path) -> Any:
        client.download_output(ref, out)
        outputs_dir = out / "outputs"
        try:
            entries = json.loads((outputs_dir / "manifest.json").read_text())
        except OSError as error:
            message = f"Kaggle kernel {ref} completed without outputs: {error}"
            raise KernelFailedError(message) from error
        results = values.load_values(entries, outputs_dir)
        metadata_file = out / "metadata.json"
        for record in json.loads(metadata_file.read_text()) if metadata_file.exists() else []:
            log_metadata(metadata=record)
        self._bring_back_wandb(out / "wandb")
        names = list(self.step.config.outputs)
        return results[names[0]] if len(names) == 1 else tuple(results[n] for n in names)

    def _bring_back_wandb(self, kernel_wandb: Path) -> None:
        runs = sorted(kernel_wandb.glob("offline-run-*")) if kernel_wandb.is_dir() else []
        if not runs or not self.tracker:
            return
        local = Path(os.environ.get("WANDB_DIR", ".")) / "wandb"
        local.mkdir(parents=True, exist_ok=True)
        for run in runs:
            shutil.copytree(run, local / run.name, dirs_exist_ok=True)
        synced = [str(local / run.name) for run in runs]
        if self.tracker.get("mode") == "offline" or not self.tracker.get("api_key"):
            log.info("W&B run from the kernel kept offline at %s (`wandb sync` it later)", synced)
        else:
            subprocess.run([sys.executable, "-m", "wandb", "sync", *synced], check=True,
                           env=os.environ | {"WANDB_API_KEY": self.tracker["api_key"]})
            log.info("W&B run from the kernel synced: %s", synced)
        log_metadata(metadata={"kaggle_wandb_runs": synced})


def follow_kernel(client: KaggleClient, names: kernel.KernelNames, ref: str, url: str,
                  settings: KaggleStepOperatorSettings) -> None:
    """Poll the pushed version ``ref``, stream its log, enforce ``settings.timeout_s``.

    Raises:
        KernelFailedError: The kernel ended ERROR/CANCEL, or ran past the timeout (then it is
            deleted). Ctrl-C deletes it too, then re-raises.
    """
    started = time.monotonic()
    interval = settings.poll_interval_s
    seen, status, lines = 0, "QUEUED", []
    version = ref.rsplit("/", 1)[1]
    try:
        while True:
            status, failure = client.status(ref)
            lines = kernel.log_lines(client.log(ref))
            elapsed = time.monotonic() - started
            for line in lines[seen:]:
                log.info("[kaggle %s %5.0fs] %s", status.lower(), elapsed, line)
            interval = (settings.poll_interval_s if len(lines) > seen
                        else min(interval * 1.5, 4 * settings.poll_interval_s))
            seen = len(lines)
            if status in kernel.FINISHED:
                break
            if elapsed > settings.timeout_s:
                client.delete(names.kernel, missing_ok=True)
                raise KernelFailedError(
                    f"Kaggle kernel {url} (version {version}) still {status} after "
                    f"{elapsed:.0f}s > timeout_s={settings.timeout_s:.0f}: deleted it.\n"
                    f"last log lines:\n{kernel.tail(lines)}"
                )
            _sleep(interval)
    except KeyboardInterrupt:
        log.warning("interrupted: deleting Kaggle kernel %s", names.kernel)
        client.delete(names.kernel, missing_ok=True)
        raise
    log.info("Kaggle kernel %s finished: %s after %.0fs", names.kernel, status,
             time.monotonic() - started)
    if status in kernel.FAILED:
        raise KernelFailedError(
            f"Kaggle kernel {url} (version {version}) ended {status}: "
            f"{failure or 'no failure message'}\nlast log lines:\n{kernel.tail(lines)}"
        )


def wandb_tracker(step: Step) -> dict | None:
    """The stack's W&B tracker settings when ``step`` uses it (``api_key`` stays local)."""
    tracker = Client().active_stack.experiment_tracker
    if tracker is None or tracker.flavor != "wandb":
        return None
    if not step.config.uses_experiment_tracker(tracker.name):
        return None
    config = tracker.config
    mode = (getattr(config, "settings", None) or {}).get("mode")
    return {"project": config.project_name, "entity": config.entity, "mode": mode,
            "api_key": config.api_key, "tags": None}


class KernelStepRunner(StepRunner):
    """ZenML's step runner with the step call sent to a Kaggle kernel."""

    def _load_step(self):
        from kaggle_orchestrator.step_operator import KaggleStepOperator

        instance = super()._load_step()
        name = self._step.config.step_operator
        operator = (self._stack.step_operators.get(name) if isinstance(name, str)
                    else self._stack.step_operator)
        if not isinstance(operator, KaggleStepOperator):
            raise RuntimeError(
                f"step {self._step.config.name}: step operator {name!r} of stack "
                f"'{self._stack.name}' is not a kaggle step operator"
            )
        settings = operator.get_settings(self._step)
        tracker = wandb_tracker(self._step)
        instance.call_entrypoint = KernelStepCall(
            self._step, instance.entrypoint, operator.config, settings, tracker
        )
        return instance


class StandaloneEntrypointConfiguration(StepOperatorEntrypointConfiguration):
    """ZenML's step-operator entrypoint, run on this machine, with ``KernelStepRunner``."""

    def prepare_code_environment(self) -> None:
        """The code is this checkout: no ``/app`` chdir, no download."""
        root = source_utils.get_source_root()
        if root not in sys.path:
            sys.path.insert(0, root)

    def _run_step(self, step: Step, snapshot: PipelineSnapshotResponse) -> None:
        """As ZenML's, with ``KernelStepRunner`` in place of ``StepRunner``."""
        step_run = self.step_run
        pipeline_run = Client().get_pipeline_run(step_run.pipeline_run_id)
        info = StepRunInfo(
            config=step.config, spec=step.spec, snapshot=snapshot, step_run=step_run,
            pipeline=snapshot.pipeline_configuration, run_name=pipeline_run.name,
            pipeline_step_name=self.entrypoint_args[STEP_NAME_OPTION], run_id=pipeline_run.id,
            step_run_id=step_run.id, force_write_logs=lambda: None,
        )
        stack = Client().active_stack
        input_utils.resolve_step_inputs(step=step, pipeline_run=pipeline_run)
        uris = output_utils.prepare_output_artifact_uris(step_run=step_run, stack=stack, step=step)
        KernelStepRunner(step=step, stack=stack).run(
            pipeline_run=pipeline_run, step_run=step_run, input_artifacts=step_run.inputs,
            output_artifact_uris=uris, step_run_info=info,
        )


__all__ = ["KaggleApiError", "KernelFailedError", "KaggleCapacityError",
           "StandaloneEntrypointConfiguration"]

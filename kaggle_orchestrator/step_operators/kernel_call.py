"""The standalone mode's step call: the step function runs in a Kaggle kernel.

``KernelStepCall`` replaces a step's ``call_entrypoint`` in the local step entrypoint
(``standalone.py``): it writes the inputs with their materializers into a bundle, ships bundle +
project code as a private Kaggle dataset, pushes a private kernel that runs the function (a
failed version with a checkpoint is resumed by the next), follows it, downloads the outputs and
hands them back to ZenML. No ZenML server, remote artifact store or credential is needed on
Kaggle.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from zenml import get_step_context, log_metadata
from zenml.metadata.metadata_types import Uri
from zenml.utils import pydantic_utils, source_utils

from kaggle_orchestrator import bundle, kernel
from kaggle_orchestrator.checkpoint_contract import has_checkpoint
from kaggle_orchestrator.client import KaggleApiError, KaggleClient, check_capacity, make_client
from kaggle_orchestrator.follow import KernelFailedError, KernelStopped, follow_kernel
from kaggle_orchestrator.stopping import delete_kernel

if TYPE_CHECKING:
    from zenml.config.step_configurations import Step

    from kaggle_orchestrator.flavors import KaggleStepOperatorConfig, KaggleStepOperatorSettings
    from kaggle_orchestrator.step_operators.wandb_run import KernelWandbRun

log = logging.getLogger(__name__)


def step_requirements(step: Step) -> list[str]:
    """The distributions the step's Docker settings ask for (``settings: docker:
    requirements: [...]``), by name: the kernel pins them like the operator's ``packages``."""
    wanted = step.config.docker_settings.requirements
    if not isinstance(wanted, list):
        return []
    return [re.split(r"[\[=<>!~; ]", r.strip(), maxsplit=1)[0] for r in wanted if r.strip()]


class KernelStepCall:
    """Replaces a step's ``call_entrypoint``: the function runs in a Kaggle kernel."""

    def __init__(self, step: Step, entrypoint: Any, config: KaggleStepOperatorConfig,
                 settings: KaggleStepOperatorSettings, wandb_run: KernelWandbRun | None) -> None:
        self.step = step
        self.entrypoint = entrypoint
        self.config = config
        self.settings = settings
        self.wandb_run = wandb_run

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
        check_capacity(client, self.settings.machine_shape, self.config.max_gpu_sessions)
        if self.wandb_run is not None:  # the training config goes into the kernel's W&B run
            self.wandb_run.config.update({
                name: value.model_dump(mode="json") for name, value in params.items()
                if isinstance(value, BaseModel)
            })
        with tempfile.TemporaryDirectory(prefix="nizami-kaggle-") as scratch:
            scratch = Path(scratch)
            try:
                self._upload_bundle(client, names, params, scratch)
                ref = self._run_attempts(client, names, scratch)
            except KernelStopped:  # deleted while it was followed
                raise
            except KeyboardInterrupt:  # while uploading or pushing: a version may exist
                delete_kernel(client, names.kernel)
                raise
            outputs = self._collect(client, ref, scratch / "output")
        self._clean_up(client, names)
        return outputs

    def _clean_up(self, client: KaggleClient, names: kernel.KernelNames) -> None:
        """After a success: delete the kernel and the bundle dataset (``keep`` keeps them).
        Never fails the step: a leftover is named, for ``make kaggle-clean``."""
        if self.settings.keep:
            log.info("kept on Kaggle (keep: true): kernel %s, dataset %s/%s", names.kernel,
                     client.username, names.dataset)
            return
        for what, delete in (("kernel", lambda: client.delete(names.kernel, missing_ok=True)),
                             ("dataset", lambda: client.delete_dataset(
                                 f"{client.username}/{names.dataset}"))):
            try:
                delete()
            except KaggleApiError as error:
                log.warning("the step's %s is left on Kaggle (%s); `make kaggle-clean` removes "
                            "it", what, error)
        log.info("removed from Kaggle: kernel %s and its bundle dataset (outputs are here)",
                 names.kernel)

    def _run_attempts(self, client: KaggleClient, names: kernel.KernelNames,
                      scratch: Path) -> str:
        """Push and follow kernel versions until one completes; a version that failed after a
        checkpoint is resumed by the next (``max_attempts``). Returns the completed ref."""
        url = client.kernel_url(names.kernel)
        attempts: list[dict[str, Any]] = []
        attempt = 0
        while True:  # returns the completed version, or raises the last failure
            attempt += 1
            resume = [f"{client.username}/{names.kernel}"] if attempt > 1 else []
            version = self._push(client, names, scratch / f"kernel-{attempt}", resume)
            ref = f"{client.username}/{names.kernel}/{version}"
            started = time.monotonic()
            record = {"attempt": attempt, "kernel_version": version, "resumed": bool(resume)}
            attempts.append(record)
            self._log_kernel(client, names, version, url, attempts)
            try:
                follow_kernel(client, names.kernel, ref, url, self.settings.timeout_s,
                              self.settings.poll_interval_s)
            except KernelFailedError as failure:
                record |= {"status": "failed", "minutes": _minutes(started)}
                if attempt == self.settings.max_attempts or not self._resumable(client, ref):
                    self._log_kernel(client, names, version, url, attempts)
                    raise
                log.warning("Kaggle kernel version %d failed after a checkpoint: resuming in a "
                            "new version (attempt %d of %d). %s", version, attempt + 1,
                            self.settings.max_attempts, str(failure).splitlines()[0])
                continue
            record |= {"status": "completed", "minutes": _minutes(started)}
            self._log_kernel(client, names, version, url, attempts)
            return ref

    def _resumable(self, client: KaggleClient, ref: str) -> bool:
        """Whether the failed version ``ref`` left a complete checkpoint in its output."""
        try:
            files = client.output_files(ref)
        except KaggleApiError as error:  # its output is gone (deleted at a timeout...)
            log.warning("no output of %s to resume from: %s", ref, error)
            return False
        return has_checkpoint(files, self.config.resume_marker)

    def _log_kernel(self, client: KaggleClient, names: kernel.KernelNames, version: int,
                    url: str, attempts: list[dict[str, Any]]) -> None:
        log_metadata(metadata={"kaggle": {
            "kernel_url": Uri(url), "kernel_slug": names.kernel, "kernel_version": version,
            "bundle_dataset": f"{client.username}/{names.dataset}",
            "machine_shape": self.settings.machine_shape or "CPU", "attempts": attempts,
            "gpu_minutes": round(sum(a.get("minutes", 0) for a in attempts), 1)
            if self.settings.machine_shape else 0,
        }})

    # -- before the push ------------------------------------------------------------------

    def _upload_bundle(self, client: KaggleClient, names: kernel.KernelNames,
                       params: dict[str, Any], scratch: Path) -> None:
        bundle_dir = scratch / "bundle"
        outputs = self.step.config.outputs
        manifest = {
            "step_source": self.step.spec.source.import_path,
            "inputs": bundle.save_values(params, bundle_dir / "inputs"),
            "outputs": list(outputs),
            "output_materializers": {
                name: [s.import_path for s in output.materializer_source]
                for name, output in outputs.items()
            },
            # What the kernel's offline W&B run needs; never the API key.
            "wandb": self.wandb_run.for_kernel() if self.wandb_run else None,
        }
        bundle.write_manifest(bundle_dir, manifest)
        dataset_dir = scratch / "dataset"
        dataset_dir.mkdir()
        size = bundle.pack(bundle_dir, Path(source_utils.get_source_root()),
                           dataset_dir / kernel.BUNDLE_FILE)
        (dataset_dir / "dataset-metadata.json").write_text(
            json.dumps(kernel.dataset_metadata(client.username, names))
        )
        ref = f"{client.username}/{names.dataset}"
        log.info("uploading inputs + code (%.1f MB) as private dataset %s", size / 1e6, ref)
        client.create_dataset(dataset_dir)
        client.wait_dataset_ready(ref)

    def _push(self, client: KaggleClient, names: kernel.KernelNames, folder: Path,
              kernel_sources: list[str]) -> int:
        folder.mkdir()
        requirements = kernel.pinned_requirements(
            [*self.config.packages, *step_requirements(self.step)],
            self.settings.extra_requirements,
        )
        (folder / "kernel.py").write_text(
            kernel.kernel_script(client.username, names, requirements)
        )
        meta = kernel.kernel_metadata(
            client.username, names, self.settings.machine_shape, self.settings.enable_internet,
            self.settings.dataset_sources, self.settings.model_sources, kernel_sources,
        )
        (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
        version = client.push(folder, names.kernel, int(self.settings.timeout_s))
        log.info("pushed private kernel %s version %d (%s)", names.kernel, version,
                 self.settings.machine_shape or "CPU")
        return version

    # -- after it finished ------------------------------------------------------------------

    def _collect(self, client: KaggleClient, ref: str, out: Path) -> Any:
        client.download_output(ref, out)
        self._report(out / kernel.REPORT_FILE)
        outputs_dir = out / "outputs"
        try:
            entries = json.loads((outputs_dir / "manifest.json").read_text())
        except OSError as error:
            message = f"Kaggle kernel {ref} completed without outputs: {error}"
            raise KernelFailedError(message) from error
        results = bundle.load_values(entries, outputs_dir)
        metadata_file = out / "metadata.json"
        for record in json.loads(metadata_file.read_text()) if metadata_file.exists() else []:
            log_metadata(metadata=record)
        try:
            self._bring_back_wandb(out / "wandb")
        except Exception as error:  # noqa: BLE001 W&B bookkeeping never costs the step's outputs
            log.warning("the kernel's W&B run was not brought back: %s", error)
        names = list(self.step.config.outputs)
        return results[names[0]] if len(names) == 1 else tuple(results[n] for n in names)

    @staticmethod
    def _report(path: Path) -> None:
        """What the kernel found (image, bundle mount, internet) and installed, as metadata."""
        if not path.is_file():
            return
        report = json.loads(path.read_text())
        log.info("kernel: Python %s, image %s; bundle at %s; installed %d packages in %ss",
                 report.get("python"), report.get("image"), report.get("bundle_path"),
                 len(report.get("installed") or []), report.get("install_s", 0))
        log_metadata(metadata={"kaggle_kernel": report})

    def _bring_back_wandb(self, kernel_wandb: Path) -> None:
        run = self.wandb_run
        if run is None:
            return
        kept = run.bring_back(kernel_wandb, Path(os.environ.get("WANDB_DIR", ".")) / "wandb")
        if not kept:
            log.warning("the kernel left no W&B run %s", run.id)
            return
        retry = shlex.join(["wandb", *run.sync_command(kept[0])[3:]])
        failed = run.sync(kept[0]) if run.online and run.api_key else None
        if run.online and failed is None:
            log.info("W&B run %s synced from the kernel: %s", run.id, run.url)
        elif run.online:  # the step's outputs are safe; only the upload is left to do
            log.warning("W&B run %s NOT synced (%s); it is kept at %s; upload it with: %s",
                        run.id, failed, kept[0], retry)  # fmt: skip
        else:
            log.info("W&B run %s kept offline at %s; upload it with: %s", run.id, kept[0], retry)
        log_metadata(metadata={"kaggle_wandb_runs": [str(p) for p in kept],
                               "wandb_synced": run.online and failed is None})  # fmt: skip


def _minutes(started: float) -> float:
    return round((time.monotonic() - started) / 60, 2)

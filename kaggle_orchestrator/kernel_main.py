"""What runs inside the Kaggle kernel: load inputs, call the step function, save outputs.

There is no ZenML server or store here. The step's ``log_metadata`` calls are recorded to
``metadata.json`` and replayed on the ZenML step run by the operator; W&B (when the step has a
W&B tracker) runs offline into ``wandb/``, which the operator brings back. Exit status 1 marks
the Kaggle session ERROR; the traceback is in the kernel log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger("nizami.kernel")


class MetadataRecorder:
    """Stands in for ``zenml.log_metadata`` inside the kernel."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, metadata: dict[str, Any], **kwargs: Any) -> None:
        if kwargs:  # model/artifact targets need the store: the operator cannot replay them
            log.warning("kernel: log_metadata targets %s are not supported; logged on the step",
                        sorted(kwargs))
        self.records.append(json.loads(json.dumps(metadata, default=str)))


def _install_recorder() -> MetadataRecorder:
    """Patch ``log_metadata`` before the step module is imported (it binds the name)."""
    import zenml
    from zenml.utils import metadata_utils

    recorder = MetadataRecorder()
    zenml.log_metadata = recorder
    metadata_utils.log_metadata = recorder
    return recorder


def _start_wandb(run: dict | None, working: Path):
    """The step's W&B run, offline (the operator syncs it with the same id; no key here)."""
    if not run:
        return None
    import wandb

    return wandb.init(
        mode="offline", dir=str(working), id=run["id"], name=run["name"],
        project=run.get("project"), entity=run.get("entity"), group=run.get("group"),
        tags=run.get("tags") or None, config=run.get("config") or None, resume="allow",
    )


def main(bundle_dir: str | Path, working: str | Path) -> int:
    """Run the step described by ``bundle_dir/manifest.json``; outputs go to
    ``working/outputs``."""
    bundle_dir, working = Path(bundle_dir), Path(working)
    working.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    from zenml.utils import source_utils  # importing zenml sets up logging to the console

    if not logging.getLogger().handlers:  # one handler only: each log line printed once
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    logging.getLogger("nizami").setLevel(logging.INFO)

    from kaggle_orchestrator import bundle

    manifest = bundle.read_manifest(bundle_dir)
    source_utils.set_custom_source_root(str(bundle_dir / "code"))
    recorder = _install_recorder()
    from zenml.steps import BaseStep

    step = BaseStep.load_from_source(manifest["step_source"])
    inputs = bundle.load_values(manifest["inputs"], bundle_dir / "inputs")
    log.info("kernel: step %s with inputs %s", step.name, sorted(inputs))
    run = _start_wandb(manifest.get("wandb"), working)
    started = time.monotonic()
    try:
        result = step.call_entrypoint(**inputs)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        if run is not None:
            run.finish()
    names = manifest["outputs"]
    outputs = dict(zip(names, result if len(names) > 1 else (result,), strict=True))
    materializers = {
        name: [source_utils.load(s) for s in sources]
        for name, sources in manifest["output_materializers"].items()
    }
    entries = bundle.save_values(outputs, working / "outputs", materializers)
    (working / "outputs" / "manifest.json").write_text(json.dumps(entries, indent=2))
    (working / "metadata.json").write_text(json.dumps(recorder.records, indent=2))
    log.info("kernel: step %s done in %.1fs", step.name, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

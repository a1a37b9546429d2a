"""``python -m kaggle_orchestrator.check`` (``make kaggle-check``): try Kaggle before a GPU run.

Costs no GPU quota: it authenticates (the same credential order as the step operator), prints
the weekly GPU quota and the GPU sessions running, then pushes a tiny **CPU** kernel with a tiny
bundle dataset, exactly as the step operator would, and reports what the first GPU run depends
on: the image's Python and preinstalled torch/transformers, where Kaggle mounted the bundle,
whether the internet is on, whether the step's pinned requirements install and import, and how
long the install took. It deletes the kernel and the dataset it created, also on failure.

Exit status 0 when everything needed is in place, 1 otherwise (the report says what).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kaggle_orchestrator import kernel
from kaggle_orchestrator.client import KaggleClient
from kaggle_orchestrator.credentials import resolve_credentials
from kaggle_orchestrator.flavors.kaggle_step_operator_flavor import DEFAULT_KERNEL_PACKAGES
from kaggle_orchestrator.follow import KernelFailedError, follow_kernel

log = logging.getLogger("kaggle_orchestrator.check")
# Import names of the pinned distributions, where they differ.
IMPORT_NAMES = {"huggingface-hub": "huggingface_hub"}


def _bundle(folder: Path, names: kernel.KernelNames, owner: str) -> None:
    """A tiny bundle dataset: the manifest and folders the kernel looks for, nothing else."""
    bundle = folder / "bundle-src"
    for sub in ("code", "inputs"):
        (bundle / sub).mkdir(parents=True)
    (bundle / "manifest.json").write_text(json.dumps({"check": True}))
    import tarfile

    with tarfile.open(folder / "dataset" / kernel.BUNDLE_FILE, "w:gz") as tar:
        tar.add(bundle, arcname=".")
    (folder / "dataset" / "dataset-metadata.json").write_text(
        json.dumps(kernel.dataset_metadata(owner, names))
    )


def run_check(client: KaggleClient, internet: bool = True, timeout_s: float = 1800,
              poll_interval_s: float = 10.0) -> dict:
    """Push the check kernel, follow it, and return its report (plus quota and sessions)."""
    left, reserved = client.gpu_quota()
    busy = client.running_gpu_kernels(reserved)
    print(f"GPU quota left this week: {left / 3600:.1f} h; GPU sessions running: {len(busy)}"
          + (f" ({', '.join(busy)})" if busy else ""), flush=True)
    names = kernel.KernelNames.for_step_run("nizami", "check", uuid.uuid4())
    requirements = kernel.pinned_requirements(DEFAULT_KERNEL_PACKAGES)
    imports = [IMPORT_NAMES.get(r.split("==")[0], r.split("==")[0]) for r in requirements]
    dataset_ref = f"{client.username}/{names.dataset}"
    with tempfile.TemporaryDirectory(prefix="nizami-check-") as scratch:
        scratch = Path(scratch)
        (scratch / "dataset").mkdir()
        (scratch / "kernel").mkdir()
        _bundle(scratch, names, client.username)
        (scratch / "kernel" / "kernel.py").write_text(
            kernel.kernel_script(client.username, names, requirements, check_imports=imports)
        )
        meta = kernel.kernel_metadata(client.username, names, None, internet)
        (scratch / "kernel" / "kernel-metadata.json").write_text(json.dumps(meta))
        started = time.monotonic()
        try:
            client.create_dataset(scratch / "dataset")
            client.wait_dataset_ready(dataset_ref)
            version = client.push(scratch / "kernel", names.kernel, int(timeout_s))
            ref = f"{client.username}/{names.kernel}/{version}"
            print(f"pushed CPU kernel {ref} ({client.kernel_url(names.kernel)})", flush=True)
            status, failure = "COMPLETE", ""
            try:
                follow_kernel(client, names.kernel, ref, client.kernel_url(names.kernel),
                              timeout_s, poll_interval_s)
            except KernelFailedError as error:
                status, failure = "ERROR", str(error)
            client.download_output(ref, scratch / "out")
            report_file = scratch / "out" / kernel.REPORT_FILE
            report = json.loads(report_file.read_text()) if report_file.is_file() else {}
        finally:
            client.delete(names.kernel, missing_ok=True)
            client.delete_dataset(dataset_ref)
    return {**report, "status": status, "failure": failure, "quota_left_h": left / 3600,
            "gpu_sessions": busy, "imports": imports,
            "wall_s": round(time.monotonic() - started, 1)}


def format_report(report: dict) -> tuple[str, bool]:
    """The report as lines a user reads before the first GPU run, and whether all is well."""
    image = report.get("image") or {}
    ok = report.get("status") == "COMPLETE"
    lines = [
        "Kaggle pre-flight check",
        f"  kernel            {report.get('status')} in {report.get('wall_s')}s",
        f"  Python            {report.get('python', '?')}",
        f"  image torch       {image.get('torch') or 'absent'}",
        f"  image transformers {image.get('transformers') or 'absent'}",
        f"  bundle mounted at {report.get('bundle_path', '?')}",
        f"  internet          {'on' if report.get('internet') else 'off'}",
        f"  installed         {len(report.get('installed') or [])} pinned packages in "
        f"{report.get('install_s', 0)}s: {' '.join(report.get('installed') or []) or '-'}",
        f"  imports           {'ok' if ok else 'FAILED'}: {', '.join(report.get('imports', []))}",
        f"  GPU quota left    {report.get('quota_left_h', 0):.1f} h this week; "
        f"{len(report.get('gpu_sessions') or [])} GPU sessions running",
    ]
    if not ok:
        failure = (report.get("failure") or "no report came back").splitlines()[0]
        lines.append(f"  failure           {failure}")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 if the first GPU run can start."""
    parser = argparse.ArgumentParser(prog="python -m kaggle_orchestrator.check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", help="a Kaggle-compatible API (the emulator's URL)")
    parser.add_argument("--no-internet", action="store_true", help="push with internet off")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the kernel")
    parser.add_argument("--poll-interval", type=float, default=10.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    credentials = resolve_credentials()
    client = KaggleClient(credentials, endpoint=args.endpoint)
    print(f"authenticated as {client.username} with a {credentials.kind} from "
          f"{credentials.source}", flush=True)
    report = run_check(client, not args.no_internet, args.timeout, args.poll_interval)
    text, ok = format_report(report)
    print(text, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The code file Kaggle runs: find the bundle, install what the image lacks, run the step.

``kernel.kernel_script`` pushes this file's text with ``CONFIG`` filled in; nothing else is
sent as source, and nothing in it is secret. It runs on Kaggle's image (Python 3.12, Kaggle's
own torch and transformers) with the standard library only until the install is done, so it
works before any of our pins exist there. The order is deliberate: the bundle is looked for
first, so a kernel whose bundle is not attached fails in seconds with a listing of
``/kaggle/input`` instead of after a pip install that spent GPU minutes.

Kaggle mounts an attached dataset at ``/kaggle/input/datasets/<owner>/<slug>/`` (2026), some
attachments still at ``/kaggle/input/<slug>/``; anywhere else, the bundle is found by its file
names. ``kernel-report.json`` in ``/kaggle/working`` says what was found and installed.

In server mode (``CONFIG["command"]``) the kernel runs ZenML's own step entrypoint instead of
the bundled step call: ZenML downloads the code archive from the artifact store and talks to
the ZenML server with the run-scoped token that the bundle (never this source) carries.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

# Filled in by kaggle_orchestrator.kernel.kernel_script (owner, dataset, requirements, files).
CONFIG: dict = {}

INPUT = "/kaggle/input"
WORKING = "/kaggle/working"
MANIFEST = "manifest.json"
IMAGE_PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "wandb", "zenml")


def find_bundle(input_dir: str, owner: str, dataset: str, bundle_file: str) -> str | None:
    """The folder holding the bundle (its archive, or its unpacked ``manifest.json``)."""
    for folder in (os.path.join(input_dir, "datasets", owner, dataset),
                   os.path.join(input_dir, dataset)):
        if os.path.isdir(folder):
            return folder
    found = []
    for path, dirs, files in os.walk(input_dir):
        dirs.sort()
        if bundle_file in files or (MANIFEST in files and "code" in dirs and "inputs" in dirs):
            found.append(path)
    found.sort(key=lambda path: (dataset not in path, len(path)))
    return found[0] if found else None


def unpack_bundle(folder: str, bundle_file: str) -> str:
    """The bundle's root folder: Kaggle may or may not have unpacked the uploaded archive."""
    archive = os.path.join(folder, bundle_file)
    if os.path.isfile(archive):
        target = tempfile.mkdtemp(prefix="nizami-bundle-")
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        return target
    for candidate in (os.path.join(folder, bundle_file.split(".")[0]), folder):
        if os.path.isfile(os.path.join(candidate, MANIFEST)):
            return candidate
    raise SystemExit(f"nizami: {folder} holds neither {bundle_file} nor a {MANIFEST}: "
                     f"{', '.join(sorted(os.listdir(folder))) or 'nothing'}")


def listing(input_dir: str, depth: int = 4, limit: int = 40) -> str:
    """What ``input_dir`` holds, as one line (folders to ``depth`` levels, then files)."""
    if not os.path.isdir(input_dir):
        return f"{input_dir} does not exist"
    entries = []
    for path, dirs, files in os.walk(input_dir):
        dirs.sort()
        level = os.path.relpath(path, input_dir).count(os.sep)
        if level >= depth - 1:
            dirs[:] = []
        entries += [os.path.relpath(os.path.join(path, n), input_dir) for n in sorted(files)]
        if not dirs and not files and path != input_dir:
            entries.append(os.path.relpath(path, input_dir) + "/")
    more = f" (+{len(entries) - limit} more)" if len(entries) > limit else ""
    return (", ".join(entries[:limit]) or "nothing") + more


def version_of(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def internet_on(host: str = "pypi.org", timeout: float = 3.0) -> bool:
    """Whether the session reaches the internet (``enable_internet`` in the kernel metadata)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def install(requirements: list[str], report: dict) -> None:
    """``pip install`` the pinned requirements whose version the image does not have."""
    missing = [r for r in requirements
               if version_of(r.partition("==")[0].partition("[")[0]) != r.partition("==")[2]]
    report["installed"] = missing
    if not missing:
        return
    if not report["internet"]:
        raise SystemExit("nizami: internet is off and the image lacks " + " ".join(missing) +
                         ": set enable_internet: true (or attach wheels as a dataset)")
    print(f"installing {len(missing)} pinned packages: {' '.join(missing)}", flush=True)
    started = time.monotonic()
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", *missing])
    report["install_s"] = round(time.monotonic() - started, 1)
    print(f"installed in {report['install_s']:.0f}s", flush=True)


def write_report(report: dict) -> None:
    """``/kaggle/working/kernel-report.json`` (comes back with the outputs)."""
    os.makedirs(WORKING, exist_ok=True)
    with open(os.path.join(WORKING, CONFIG["report_file"]), "w") as handle:
        json.dump(report, handle, indent=2)


def run_entrypoint(bundle: str, command: list[str]) -> int:
    """Server mode: run ZenML's step entrypoint with the step environment from the bundle.

    That environment holds the run-scoped ZenML API token: it comes from the private bundle
    dataset (deleted by the operator when the step ends), is removed from the unpacked copy
    before the step starts, and is never printed nor written to /kaggle/working (which Kaggle
    keeps with the version). Exit status: the entrypoint's.
    """
    path = os.path.join(bundle, CONFIG["environment_file"])
    with open(path, encoding="utf-8") as handle:
        environment = json.load(handle)
    try:
        os.remove(path)
    except OSError:  # Kaggle unpacked the archive on the read-only mount: nothing to remove
        pass
    print(f"nizami: running ZenML's step entrypoint against "
          f"{environment.get('ZENML_STORE_URL', '?')}", flush=True)
    return subprocess.call([sys.executable, *command[1:]], env={**os.environ, **environment})


def main() -> int:
    """Find the bundle, install, run the step; the exit status is the session's."""
    owner, dataset, bundle_file = CONFIG["owner"], CONFIG["dataset"], CONFIG["bundle_file"]
    folder = find_bundle(INPUT, owner, dataset, bundle_file)
    if folder is None:
        raise SystemExit(f"nizami: the bundle dataset {owner}/{dataset} is not attached "
                         f"(no {bundle_file} under {INPUT}); {INPUT} holds: {listing(INPUT)}")
    print(f"bundle {owner}/{dataset} found at {folder}", flush=True)
    report = {
        "python": platform.python_version(),
        "image": {name: version_of(name) for name in IMAGE_PACKAGES},
        "bundle_path": folder,
        "internet": internet_on(),
    }
    try:
        install(CONFIG["requirements"], report)
    finally:
        write_report(report)
    bundle = unpack_bundle(folder, bundle_file)
    sys.path.insert(0, os.path.join(bundle, "code"))
    if CONFIG.get("check_only"):  # the pre-flight check: imports, no step
        for module in CONFIG["check_imports"]:
            __import__(module)
        print("imports ok:", ", ".join(CONFIG["check_imports"]), flush=True)
        return 0
    os.environ.update(CONFIG["env"])  # where checkpoints go, and where earlier ones are looked for
    if CONFIG.get("command"):  # server mode: ZenML's own step entrypoint, against the server
        status = run_entrypoint(bundle, CONFIG["command"])
    else:
        from kaggle_orchestrator.kernel_main import main as run_step

        status = run_step(bundle, WORKING)
    if status == 0:  # done: the checkpoints would only weigh on the output download
        shutil.rmtree(CONFIG["checkpoints"], ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``kernels.KernelsApiService``: push, run, poll, fetch outputs, delete.

Each handler takes the emulator state, the caller and the request body (camelCase JSON, as
kagglesdk 0.1.38 sends it) and returns the response body; ``ApiError`` becomes an HTTP error.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from slugify import slugify

from kaggle_emulator.sandbox import KernelVersion, Status, run_session
from kaggle_emulator.state import ApiError, Call, EmulatorState, Kernel, iso_time

MAX_SOURCE_BYTES = 1_000_000
LANGUAGES = ("python", "r", "rmarkdown")
KERNEL_TYPES = ("script", "notebook")
# docs/kernels.md "as of Sep 2026", plus the retired shapes the server still accepts.
MACHINE_SHAPES = {
    "NvidiaTeslaT4": "NvidiaTeslaT4",
    "NvidiaTeslaT4Highmem": "NvidiaTeslaT4Highmem",
    "NvidiaTeslaA100": "NvidiaTeslaA100",
    "NvidiaL4": "NvidiaL4",
    "NvidiaL4X1": "NvidiaL4X1",
    "NvidiaH100": "NvidiaH100",
    "NvidiaRtxPro6000": "NvidiaRtxPro6000",
    "TpuV5E8": "TpuV5E8",
    "TpuV6E8": "TpuV6E8",
    "NvidiaTeslaP100": "NvidiaTeslaT4",
    "TpuV38": "TpuV5E8",
    "Tpu1VmV38": "TpuV5E8",
    "TpuV232": "",
    "TpuV2256": "",
}
QUOTA_EXCEEDED = "Maximum weekly GPU quota exceeded"
PAGE_SIZE, MAX_PAGE_SIZE = 20, 200


def _split_ref(ref: str, what: str) -> tuple[str, str, str | None]:
    """``owner/slug[/version]`` (datasets also ``owner/slug/versions/N``)."""
    parts = [p for p in ref.split("/") if p]
    if len(parts) == 4 and parts[2] == "versions":
        parts = [parts[0], parts[1], parts[3]]
    if len(parts) not in (2, 3):
        raise ApiError(400, f"{what} {ref!r} is not of the form owner/slug")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _page(body: dict[str, Any], items: list[Any]) -> tuple[list[Any], str]:
    size = min(int(body.get("pageSize") or PAGE_SIZE), MAX_PAGE_SIZE)
    token = body.get("pageToken") or ""
    if token and not token.isdigit():
        raise ApiError(400, f"Invalid page token {token!r}")
    start = int(token or 0)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _kernel_from(state: EmulatorState, call: Call, body: dict[str, Any]) -> Kernel:
    owner, slug = body.get("userName") or call.user, body.get("kernelSlug") or ""
    if not slug:
        raise ApiError(400, "kernelSlug must be set")
    return state.kernel(owner, slug)


# --- SaveKernel ------------------------------------------------------------------------------


def _validate_push(body: dict[str, Any]) -> tuple[str, str]:
    text = body.get("text")
    if not text:
        raise ApiError(400, "The kernel source (text) must not be empty")
    if len(text.encode()) >= MAX_SOURCE_BYTES:
        raise ApiError(400, "The kernel source must be less than 1 megabytes in size.")
    language = body.get("language") or ""
    if language not in LANGUAGES:
        raise ApiError(400, f"Invalid language {language!r}; expected one of {list(LANGUAGES)}")
    kernel_type = body.get("kernelType") or ""
    if kernel_type not in KERNEL_TYPES:
        raise ApiError(400, f"Invalid kernelType {kernel_type!r}; expected {list(KERNEL_TYPES)}")
    shape = body.get("machineShape")
    if shape and shape not in MACHINE_SHAPES:
        raise ApiError(400, f"Invalid machineShape {shape!r}")
    timeout = body.get("sessionTimeoutSeconds")
    if timeout is not None and int(timeout) <= 0:
        raise ApiError(400, "sessionTimeoutSeconds must be positive")
    return language, kernel_type


def _resolve_kernel(state: EmulatorState, call: Call, body: dict[str, Any]) -> Kernel | str:
    """The kernel a push targets (created if new), or the ``error`` text Kaggle answers 200."""
    if body.get("id"):
        with state.lock:
            found = [k for k in state.kernels.values() if k.id == int(body["id"])]
        if not found or found[0].owner.lower() != call.user.lower():
            return "Kernel not found"
        return found[0]
    owner, slug, version = _split_ref(body.get("slug") or "", "Kernel slug")
    if version is not None:
        raise ApiError(400, "A kernel slug cannot contain a version")
    if owner.lower() != call.user.lower():
        return "Kernel not found"  # pushing to someone else's slug (kaggle-cli #139)
    with state.lock:
        existing = state.kernels.get((owner.lower(), slug.lower()))
        if existing is not None:
            return existing
        title = body.get("newTitle") or slug
        # A new kernel is filed under the slug its title resolves to (kaggle-cli #847, unsloth).
        slug = slugify(title) if body.get("newTitle") else slug
        if len(slug) < 5:
            raise ApiError(400, f"Kernel slug {slug!r} must be at least 5 characters")
        existing = state.kernels.get((owner.lower(), slug.lower()))
        # A new kernel is registered with its first version (a refused push leaves nothing).
        return existing or Kernel(state.next_id(), call.user, slug, title)


def _mounts(
    state: EmulatorState, body: dict[str, Any]
) -> tuple[dict[str, Path], list[str], list[str]]:
    """Where attached datasets and kernel outputs go under ``/kaggle/input``, and the invalid
    sources (a missing dataset or kernel, or a dataset still being processed).

    Kaggle (2026) mounts datasets at ``datasets/<owner>/<slug>`` and other kernels' outputs at
    ``notebooks/<owner>/<slug>``; the ``legacy`` layout puts a dataset at ``<slug>``.
    """
    mounts: dict[str, Path] = {}
    bad_datasets: list[str] = []
    bad_kernels: list[str] = []
    for source in body.get("datasetDataSources") or []:
        try:
            owner, slug, number = _split_ref(source, "Dataset source")
            dataset = state.dataset(owner, slug)
            version = dataset.versions[int(number)] if number else dataset.latest
        except (ApiError, KeyError, ValueError):
            bad_datasets.append(source)
            continue
        if not version.ready:
            bad_datasets.append(source)
            continue
        legacy = state.settings.layout == "legacy"
        where = dataset.slug if legacy else f"datasets/{dataset.owner}/{dataset.slug}"
        mounts[where] = version.files_dir
    for source in body.get("kernelDataSources") or []:
        try:
            owner, slug, number = _split_ref(source, "Kernel source")
            kernel = state.kernel(owner, slug)
            versions = [kernel.versions[int(number)]] if number else list(kernel.versions.values())
        except (ApiError, KeyError, ValueError):
            bad_kernels.append(source)
            continue
        done = [v for v in versions if v.status is not Status.QUEUED and not v.active]
        if done:
            mounts.setdefault(f"notebooks/{kernel.owner}/{kernel.slug}", done[-1].working_dir)
        else:
            bad_kernels.append(source)
    return mounts, bad_datasets, bad_kernels


def save_kernel(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """SaveKernel: store a new version and start its session (unless QUICK_SAVE)."""
    _validate_push(body)
    target = _resolve_kernel(state, call, body)
    if isinstance(target, str):
        return {"error": target}
    kernel = target
    shape = MACHINE_SHAPES.get(body.get("machineShape") or "", None)
    if body.get("enableGpu") and not shape:
        shape = "NvidiaTeslaT4"  # enable_gpu without a shape once meant P100, now retired
    gpu = bool(shape and shape.startswith("Nvidia"))
    run = body.get("kernelExecutionType") != "QUICK_SAVE"
    push_error = state.faults.take_push_error(kernel.slug)
    if push_error is not None:
        return {"error": push_error.message}
    if gpu and run:
        if state.faults.quota_exhausted or state.gpu_seconds() >= state.gpu_quota_seconds:
            return {"error": QUOTA_EXCEEDED}
        if state.running_gpu_sessions() >= state.gpu_session_limit:
            limit = state.gpu_session_limit
            return {"error": f"Maximum batch GPU session count of {limit} reached."}
    mounts, bad_datasets, bad_kernels = _mounts(state, body)
    models = list(body.get("modelDataSources") or [])  # models are not emulated
    competitions = list(body.get("competitionDataSources") or [])  # nor competitions

    with state.lock:
        number = max(kernel.versions, default=0) + 1
        version = KernelVersion(
            kernel.owner,
            kernel.slug,
            number,
            dict(body, machineShape=shape or None),
            state.root / "kernels" / kernel.owner / kernel.slug / str(number),
            gpu=gpu and run,
        )
        kernel.versions[number] = version
        state.kernels.setdefault((kernel.owner.lower(), kernel.slug.lower()), kernel)
        if body.get("newTitle"):
            kernel.title = body["newTitle"]
    if run:
        fault = state.faults.take_kernel_fault(kernel.slug)
        state.start_thread(
            lambda: run_session(version, mounts, state.settings, fault, state.session_ended),
            name=f"kaggle-kernel-{kernel.slug}-v{number}",
        )
    else:
        version.dir.mkdir(parents=True, exist_ok=True)
        version.status, version.ended = Status.COMPLETE, time.time()
    response: dict[str, Any] = {
        "ref": f"/code/{kernel.ref}",
        "url": f"{call.base_url}/code/{kernel.ref}",
        "versionNumber": number,
        "kernelId": kernel.id,
    }
    for name, bad in (
        ("invalidDatasetSources", bad_datasets),
        ("invalidKernelSources", bad_kernels),
        ("invalidModelSources", models),
        ("invalidCompetitionSources", competitions),
    ):
        if bad:
            response[name] = bad
    return response


# --- reading ------------------------------------------------------------------------------------


def get_kernel_session_status(
    state: EmulatorState, call: Call, body: dict[str, Any]
) -> dict[str, Any]:
    """GetKernelSessionStatus: the status of a version (``versionLabel``) or the newest one."""
    version = _kernel_from(state, call, body).version(body.get("versionLabel"))
    with version.lock:
        status, failure = version.status, version.failure_message
    response: dict[str, Any] = {"status": str(status)}
    if failure:
        response["failureMessage"] = failure
    return response


def list_kernel_session_output(
    state: EmulatorState, call: Call, body: dict[str, Any]
) -> dict[str, Any]:
    """ListKernelSessionOutput: signed URLs of ``/kaggle/working`` files once the session
    ended, and the log so far (a JSON array string, as Kaggle sends it)."""
    version = _kernel_from(state, call, body).version(body.get("versionLabel"))
    names = [] if version.active else version.output_files()
    page, token = _page(body, names)
    response: dict[str, Any] = {
        "files": [
            {"fileName": name, "url": state.signed_url(call, version.working_dir / name)}
            for name in page
        ],
        "log": version.log_text(),
    }
    if token:
        response["nextPageToken"] = token
    return response


def list_kernel_files(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """ListKernelFiles: the output files of a version, with sizes."""
    version = _kernel_from(state, call, body).version(body.get("versionLabel"))
    names = [] if version.active else version.output_files()
    page, token = _page(body, names)
    files = []
    for name in page:
        stat = (version.working_dir / name).stat()
        files.append({"name": name, "size": stat.st_size, "creationDate": iso_time(stat.st_mtime)})
    return {"files": files, **({"nextPageToken": token} if token else {})}


def _metadata(kernel: Kernel, version: KernelVersion) -> dict[str, Any]:
    request = version.request
    metadata = {
        "id": kernel.id,
        "ref": kernel.ref,
        "title": kernel.title,
        "author": kernel.owner,
        "slug": kernel.ref,
        "lastRunTime": iso_time(version.started or version.created),
        "language": request.get("language"),
        "kernelType": request.get("kernelType"),
        "isPrivate": request.get("isPrivate", True),
        "enableGpu": bool(request.get("enableGpu")),
        "enableTpu": bool(request.get("enableTpu")),
        "enableInternet": bool(request.get("enableInternet")),
        "categoryIds": request.get("categoryIds") or [],
        "datasetDataSources": request.get("datasetDataSources") or [],
        "kernelDataSources": request.get("kernelDataSources") or [],
        "competitionDataSources": request.get("competitionDataSources") or [],
        "modelDataSources": request.get("modelDataSources") or [],
        "currentVersionNumber": max(kernel.versions),
        "dockerImage": request.get("dockerImage"),
        "machineShape": request.get("machineShape"),
    }
    return {k: v for k, v in metadata.items() if v is not None}


def get_kernel(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """GetKernel: metadata and source of a version (what ``kaggle kernels pull`` shows)."""
    kernel = _kernel_from(state, call, body)
    version = kernel.version(body.get("versionLabel"))
    return {
        "metadata": _metadata(kernel, version),
        "blob": {
            "source": version.request.get("text", ""),
            "language": version.request.get("language"),
            "kernelType": version.request.get("kernelType"),
            "slug": kernel.ref,
        },
    }


def list_kernels(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """ListKernels, newest run first. ``group: PROFILE`` (the client's ``mine=True``) lists the
    caller's own kernels, private ones included; any other view lists public kernels only, so
    ``kernels_list(user=me)`` misses one's private kernels, as on Kaggle. ``search`` matches
    the slug or title."""
    user = body.get("user") or ""
    mine = body.get("group") == "PROFILE"
    search = (body.get("search") or "").lower()
    with state.lock:
        kernels = [
            k for k in state.kernels.values()
            if (k.owner.lower() == call.user.lower() if mine
                else not k.latest.request.get("isPrivate", True))
            and (not user or k.owner.lower() == user.lower())
            and (not search or search in k.slug.lower() or search in k.title.lower())
        ]  # fmt: skip
    kernels.sort(key=lambda k: k.latest.started or k.latest.created, reverse=True)
    size = min(int(body.get("pageSize") or PAGE_SIZE), MAX_PAGE_SIZE)
    page = max(int(body.get("page") or 1), 1)
    chosen = kernels[(page - 1) * size : page * size]
    return {"kernels": [_metadata(k, k.latest) for k in chosen]}


def delete_kernel(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """DeleteKernel: kill the kernel's running sessions and forget it."""
    kernel = _kernel_from(state, call, body)
    if kernel.owner.lower() != call.user.lower():
        raise ApiError(403, f"Permission denied: {kernel.ref} belongs to another user")
    with state.lock:
        state.kernels.pop((kernel.owner.lower(), kernel.slug.lower()), None)
        state.deleted_kernels.append(kernel.ref)
    for version in kernel.versions.values():
        version.kill()
    return {}


def get_accelerator_quota_statistics(
    state: EmulatorState, call: Call, body: dict[str, Any]
) -> dict[str, Any]:
    """GetAcceleratorQuotaStatistics: weekly GPU/TPU quota, used and allowed (``"NNNs"``)."""
    total = state.gpu_quota_seconds
    used = total if state.faults.quota_exhausted else min(state.gpu_seconds_used, total)
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    refresh = midnight + timedelta(days=(5 - now.weekday()) % 7 or 7)  # next Saturday 00:00Z
    return {
        "quotaRefreshTime": iso_time(refresh.timestamp()),
        "gpuQuota": {
            "timeUsed": f"{int(used)}s",
            "timeReserved": f"{int(state.gpu_seconds_reserved())}s",
            "totalTimeAllowed": f"{int(total)}s",
            "minimumTimeAllowed": f"{int(total)}s",
            "hasEverRun": used > 0,
        },
        "tpuQuota": {
            "timeUsed": "0s",
            "timeReserved": "0s",
            "totalTimeAllowed": "72000s",
            "minimumTimeAllowed": "72000s",
        },
    }

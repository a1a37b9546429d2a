"""The emulator's HTTP surface: Kaggle's RPC routes, the blob/file URLs it hands out, admin.

Kaggle routes (what kagglesdk 0.1.38 calls):

- ``POST /api/v1/<service>/<Method>`` (also ``/v1/...``), camelCase JSON in and out, HTTP Basic
  auth with the emulator's username and key (or a Bearer token); errors are a real HTTP status
  with ``{"code": <status>, "message": ...}``.
- ``PUT /_emulator/upload/<token>``: the ``createUrl`` of a blob upload (no auth).
- ``GET /_emulator/files/<path>?Expires=..&Signature=..``: the signed URLs of kernel output files
  and dataset downloads (no auth; 403 once expired or tampered with).
- ``GET /api/v1/kernels/logs/stream/<owner>/<slug>[?versionLabel=vN]`` (also ``/v1/...``): a
  session's log, as ``KaggleApi.kernels_logs_stream`` reads it: while the session runs, a live
  SSE feed (``data: {stream_name, time, data}`` events, then ``data: END_OF_LOG``); once it
  ended, the stored log (a JSON array).

Admin routes (same Basic auth; not recorded):

- ``GET|POST|DELETE /_emulator/faults``: list, add (one fault object or a list), clear.
- ``GET /_emulator/received``: every request and uploaded blob received.
- ``POST /_emulator/received/search`` ``{"needle": "..."}``: where a string occurs in them.
- ``GET /_emulator/kernels``: kernels, versions, statuses, session pids, deleted kernels.
- ``GET /_emulator/health``: readiness (no auth).

``GET /code/<owner>/<slug>`` (the ``url`` SaveKernel answers) shows a kernel's versions and
statuses, without its source.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kaggle_emulator import datasets, kernels
from kaggle_emulator.datasets import Redirect
from kaggle_emulator.faults import DOWNLOAD, LOG_STREAM, UPLOAD, HttpErrorFault
from kaggle_emulator.sandbox import KernelVersion, Status
from kaggle_emulator.state import ApiError, Call, EmulatorState, Kernel

log = logging.getLogger(__name__)

Handler = Callable[[EmulatorState, Call, dict[str, Any]], Any]
KERNELS, BLOBS, DATASETS = (
    "kernels.KernelsApiService",
    "blobs.BlobApiService",
    "datasets.DatasetApiService",
)
INTROSPECT = ("security.OAuthService", "IntrospectToken")


def _introspect_token(state: EmulatorState, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    user = state.tokens.get(body.get("token") or "")
    return {"active": True, "username": user} if user else {"active": False}


HANDLERS: dict[tuple[str, str], Handler] = {
    (KERNELS, "SaveKernel"): kernels.save_kernel,
    (KERNELS, "GetKernelSessionStatus"): kernels.get_kernel_session_status,
    (KERNELS, "ListKernelSessionOutput"): kernels.list_kernel_session_output,
    (KERNELS, "ListKernelFiles"): kernels.list_kernel_files,
    (KERNELS, "GetKernel"): kernels.get_kernel,
    (KERNELS, "ListKernels"): kernels.list_kernels,
    (KERNELS, "DeleteKernel"): kernels.delete_kernel,
    (KERNELS, "GetAcceleratorQuotaStatistics"): kernels.get_accelerator_quota_statistics,
    (BLOBS, "StartBlobUpload"): datasets.start_blob_upload,
    (DATASETS, "CreateDataset"): datasets.create_dataset,
    (DATASETS, "CreateDatasetVersion"): datasets.create_dataset_version,
    (DATASETS, "CreateDatasetVersionById"): datasets.create_dataset_version_by_id,
    (DATASETS, "GetDatasetStatus"): datasets.get_dataset_status,
    (DATASETS, "GetDataset"): datasets.get_dataset,
    (DATASETS, "ListDatasets"): datasets.list_datasets,
    (DATASETS, "GetDatasetMetadata"): datasets.get_dataset_metadata,
    (DATASETS, "ListDatasetFiles"): datasets.list_dataset_files,
    (DATASETS, "DownloadDataset"): datasets.download_dataset,
    (DATASETS, "DeleteDataset"): datasets.delete_dataset,
    INTROSPECT: _introspect_token,
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": status, "message": message}, status, headers=headers)


def _fault_response(fault: HttpErrorFault, where: str) -> Response:
    message = fault.message or f"{where}: error injected by the kaggle emulator"
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    log.info("kaggle emulator: %s -> injected %d", where, fault.status)
    if fault.html:
        page = f"<html><body><h1>Error {fault.status}</h1><p>{message}</p></body></html>"
        return Response(page, fault.status, headers=headers, media_type="text/html")
    return _error(fault.status, message, headers)


def _unauthorized(where: str) -> JSONResponse:
    return _error(
        401,
        f"{where}: unauthenticated: send HTTP Basic auth with the emulator's username and key",
        {"WWW-Authenticate": 'Basic realm="kaggle-emulator"'},
    )


class _AbsoluteFormPaths:
    """Accept proxy-style request targets (``POST http://localhost/api/v1/... HTTP/1.1``), so
    the client also works through ``HTTP_PROXY=http://127.0.0.1:<port>``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(("http://", "https://")):
            parts = urlsplit(scope["path"])
            scope = dict(scope, path=unquote(parts.path) or "/", raw_path=parts.path.encode())
            if parts.query and not scope.get("query_string"):
                scope["query_string"] = parts.query.encode()
            host = [(b"host", parts.netloc.encode())]
            scope["headers"] = [h for h in scope["headers"] if h[0] != b"host"] + host
        await self.app(scope, receive, send)


def _kernel_summary(kernel: Kernel) -> dict[str, Any]:
    return {
        "ref": kernel.ref,
        "id": kernel.id,
        "title": kernel.title,
        "versions": [
            {
                "number": v.number,
                "status": str(v.status),
                "failureMessage": v.failure_message,
                "pid": v.pid,
                "gpu": v.gpu,
                "dir": str(v.dir),
            }
            for v in kernel.versions.values()
        ],
    }


async def sse_events(version: KernelVersion, poll_s: float = 0.1) -> AsyncIterator[str]:
    """A running session's log records as SSE events, as they arrive, then the end sentinel."""
    sent = 0
    while True:
        with version.lock:
            records = version.records[sent:]
            ended = not version.active
        for record in records:
            yield f"data: {json.dumps(record, ensure_ascii=False)}\n\n"
        sent += len(records)
        if ended:
            yield "data: END_OF_LOG\n\n"
            return
        await asyncio.sleep(poll_s)


def build_app(state: EmulatorState) -> ASGIApp:
    """The ASGI app serving ``state``."""

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def rpc(request: Request) -> Response:
        service, method = request.path_params["service"], request.path_params["method"]
        where = f"{service}/{method}"
        body = await request.body()
        state.recording.add_request(request.method, request.url.path, method, body,
                                    request.headers.get("authorization", ""))
        user = ""
        if (service, method) != INTROSPECT:
            user = state.authenticate(request.headers.get("authorization")) or ""
            if not user:
                return _unauthorized(where)
        fault = state.faults.take_http_error(service, method)
        if fault is not None and not fault.served:
            return _fault_response(fault, where)
        handler = HANDLERS.get((service, method))
        if handler is None:
            return _error(404, f"{where}: unknown method (the kaggle emulator does not serve it)")
        try:
            payload = json.loads(body or b"{}")
        except ValueError as e:
            return _error(400, f"{where}: the request body is not JSON: {e}")
        if not isinstance(payload, dict):
            return _error(400, f"{where}: the request body must be a JSON object")
        slow = state.faults.take_slow_response(service, method)
        try:
            result = await run_in_threadpool(handler, state, Call(user, base_url(request)), payload)
        except ApiError as e:
            log.info("kaggle emulator: %s -> %d %s", where, e.status, e.message)
            return _error(e.status, e.message)
        except (TypeError, ValueError) as e:  # a field of the wrong type
            log.warning("kaggle emulator: %s -> 400 (%r)", where, e)
            return _error(400, f"{where}: bad request: {e}")
        except Exception as e:
            log.exception("kaggle emulator: %s failed", where)
            return _error(500, f"{where}: internal emulator error: {e}")
        if fault is not None:  # carried out; the answer is lost on the way back
            return _fault_response(fault, where)
        log.debug("kaggle emulator: %s -> 200", where)
        if slow is not None:  # done, but the answer comes late (the client may have given up)
            await asyncio.sleep(slow.seconds)
        if isinstance(result, Redirect):
            return RedirectResponse(result.url, 302)
        return JSONResponse(result)

    async def upload(request: Request) -> Response:
        state.recording.add_request(request.method, request.url.path, UPLOAD, b"")
        fault = state.faults.take_http_error("", UPLOAD)
        if fault is not None:
            return _fault_response(fault, f"PUT {request.url.path}")
        data = await request.body()
        status, headers = await run_in_threadpool(
            datasets.put_blob,
            state,
            request.path_params["token"],
            request.headers.get("content-range"),
            data,
        )
        return Response(b"", status, headers=headers)

    async def files(request: Request) -> Response:
        relpath = request.path_params["relpath"]
        state.recording.add_request(request.method, request.url.path, DOWNLOAD, b"")
        fault = state.faults.take_http_error("", DOWNLOAD)
        if fault is not None:
            return _fault_response(fault, f"GET {request.url.path}")
        query = request.query_params
        if not state.check_signature(relpath, query.get("Expires", ""), query.get("Signature", "")):
            return _error(403, f"GET {request.url.path}: the signed URL is invalid or expired")
        path = (state.root / relpath).resolve()
        if not path.is_file() or not path.is_relative_to(state.root.resolve()):
            return _error(404, f"GET {request.url.path}: no such file")
        return FileResponse(path, media_type="application/octet-stream")

    def admin(
        handler: Callable[[Request], Any],
    ) -> Callable[[Request], Any]:
        async def guarded(request: Request) -> Response:
            if not state.authenticate(request.headers.get("authorization")):
                return _unauthorized(request.url.path)
            return await handler(request)

        return guarded

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.faults.clear()
        elif request.method == "POST":
            try:
                payload = await request.json()
                items = payload if isinstance(payload, list) else [payload]
                added = [state.faults.add(item) for item in items]
            except (ValueError, ValidationError) as e:
                return _error(400, f"POST /_emulator/faults: invalid fault: {e}")
            return JSONResponse([f.model_dump(by_alias=True) for f in added], 201)
        return JSONResponse(state.faults.to_json())

    async def received(request: Request) -> Response:
        return JSONResponse(state.recording.to_json())

    async def search(request: Request) -> Response:
        try:
            needle = (await request.json())["needle"]
            hits = await run_in_threadpool(state.recording.find, needle)
        except (ValueError, KeyError, TypeError) as e:
            return _error(400, f'POST /_emulator/received/search: send {{"needle": "..."}}: {e}')
        return JSONResponse({"hits": hits})

    async def kernel_table(request: Request) -> Response:
        with state.lock:
            table = [_kernel_summary(k) for k in state.kernels.values()]
            deleted = list(state.deleted_kernels)
        return JSONResponse({"kernels": table, "deleted": deleted})

    async def kernel_page(request: Request) -> Response:
        """The ``url`` SaveKernel hands out: the kernel's versions and statuses (no source)."""
        owner, slug = request.path_params["owner"], request.path_params["slug"]
        try:
            kernel = state.kernel(owner, slug)
        except ApiError as e:
            return _error(e.status, e.message)
        return JSONResponse(_kernel_summary(kernel))

    async def log_stream(request: Request) -> Response:
        where = f"GET {request.url.path}"
        state.recording.add_request(request.method, request.url.path, LOG_STREAM, b"")
        user = state.authenticate(request.headers.get("authorization"))
        if not user:
            return _unauthorized(where)
        fault = state.faults.take_http_error("", LOG_STREAM)
        if fault is not None:
            return _fault_response(fault, where)
        owner, slug = request.path_params["owner"], request.path_params["slug"]
        try:
            version = state.kernel(owner, slug).version(request.query_params.get("versionLabel"))
        except ApiError as e:
            return _error(e.status, e.message)
        # Kaggle's endpoint proxies the session's live feed while it runs and serves the stored
        # log otherwise; a QUEUED version has no session yet, so it gets the (empty) stored log
        # and the stream ends at once (a client must connect again, not give up).
        if not version.active or version.status is Status.QUEUED:
            return Response(version.log_text(), media_type="application/json")
        return StreamingResponse(sse_events(version), media_type="text/event-stream")

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[
            Route("/api/v1/{service}/{method}", rpc, methods=["POST"]),
            Route("/v1/{service}/{method}", rpc, methods=["POST"]),
            Route("/_emulator/upload/{token}", upload, methods=["PUT"]),
            Route("/_emulator/files/{relpath:path}", files, methods=["GET", "HEAD"]),
            Route("/_emulator/faults", admin(faults), methods=["GET", "POST", "DELETE"]),
            Route("/_emulator/received", admin(received), methods=["GET"]),
            Route("/_emulator/received/search", admin(search), methods=["POST"]),
            Route("/_emulator/kernels", admin(kernel_table), methods=["GET"]),
            Route("/_emulator/health", health, methods=["GET"]),
            Route("/api/v1/kernels/logs/stream/{owner}/{slug}", log_stream, methods=["GET"]),
            Route("/v1/kernels/logs/stream/{owner}/{slug}", log_stream, methods=["GET"]),
            Route("/code/{owner}/{slug}", kernel_page, methods=["GET"]),
        ]
    )
    return _AbsoluteFormPaths(app)

"""The real ``kaggle`` client, made safe to call from a long-running step.

The kaggle 2.2.5 client has no HTTP timeouts, never retries kernel calls, authenticates as an
import side effect (printing help and calling ``exit(1)`` without credentials) and reads its
endpoint from a module-level table. ``KaggleClient`` wraps one ``KaggleApi`` so that every call
has a timeout, 429/5xx/connection errors are retried with bounded backoff (honouring
``Retry-After``), credentials (an API token or a legacy key, see ``credentials.py``) are passed
explicitly (never through ``os.environ``), and the API endpoint is a parameter: ``None`` is
Kaggle, a URL is a Kaggle-compatible server such as ``python -m kaggle_emulator``.
Everything else is the production code path.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from kaggle_orchestrator import _sdk
from kaggle_orchestrator.credentials import Credentials, resolve_credentials, token_owner
from kaggle_orchestrator.retry import call_with_retries, status_of

log = logging.getLogger(__name__)
T = TypeVar("T")


class KaggleApiError(RuntimeError):
    """A Kaggle API call failed for good (after retries, or with a non-retryable answer)."""


class KaggleCapacityError(RuntimeError):
    """No GPU quota left, or the account already runs its maximum of GPU sessions."""


# Kaggle answers a kernel that does not exist (or is not yours) with 401/403, not 404; the
# official client turns those into a ValueError "... Permission 'kernels.get' was denied".
MISSING_STATUSES = frozenset({401, 403, 404})


def is_missing(error: BaseException) -> bool:
    """Whether a failed call says "no such kernel/dataset" (in any of Kaggle's ways)."""
    cause = error.__cause__ if isinstance(error, KaggleApiError) else error
    if status_of(cause) in MISSING_STATUSES:
        return True
    return isinstance(cause, ValueError) and "was denied" in str(cause)


class KaggleClient:
    """The calls the step operator makes, each bounded in time and retried when transient.

    Args:
        credentials: An API token (sent as ``Bearer``; its owner is looked up, and must be
            ``credentials.username`` when that is set) or a user name and legacy key (Basic).
        endpoint: ``None`` for Kaggle; otherwise the base URL of a compatible server.
        timeout_s: Per-request timeout.
        max_retries: Retries of a transient failure (429, 5xx, connection error, timeout).
        backoff_s: First backoff; doubles per retry up to 60 s (a ``Retry-After`` wins).

    Raises:
        KaggleAuthError: The token is not valid, or belongs to another user.
    """

    def __init__(
        self,
        credentials: Credentials,
        endpoint: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_s: float = 2.0,
    ) -> None:
        self.api = _sdk.kaggle_api(timeout_s, endpoint)
        self.endpoint = endpoint
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        # Instance attributes shadow the class-level dict the kaggle client shares.
        if credentials.token:
            self.api.config_values = {"token": credentials.token}
            self.username = self._token_owner(credentials)
            self.api.config_values["username"] = self.username
        else:
            self.api.config_values = {"username": credentials.username, "key": credentials.key}
            self.username = credentials.username or ""

    def _token_owner(self, credentials: Credentials) -> str:
        """The user a token belongs to (Kaggle's IntrospectToken), checked against the config."""
        from kagglesdk.security.types.oauth_service import IntrospectTokenRequest

        def introspect():
            with self.api.build_kaggle_client() as kaggle:
                request = IntrospectTokenRequest()
                request.token = credentials.token
                return kaggle.security.oauth_client.introspect_token(request)

        answer = self.call("IntrospectToken", introspect)
        return token_owner(credentials, answer.active, answer.username)

    def call(self, what: str, fn: Callable[[], T],
             before_retry: Callable[[BaseException], None] | None = None) -> T:
        """Run ``fn`` (one API call) under the retry policy (``retry.py``).

        Raises:
            KaggleApiError: It failed for good; names the call (``what``), from the cause.
        """
        try:
            return call_with_retries(what, fn, self.max_retries, self.backoff_s, before_retry)
        except Exception as error:  # the kaggle client raises requests/ValueError types
            raise KaggleApiError(f"Kaggle API {what} failed: {error}") from error

    def kernel_url(self, slug: str) -> str:
        """The kernel's page (on Kaggle, or on the compatible server)."""
        base = self.endpoint.rstrip("/") if self.endpoint else "https://www.kaggle.com"
        return f"{base}/code/{self.username}/{slug}"

    # Quota and capacity -------------------------------------------------------------------

    def gpu_quota(self) -> tuple[float, float]:
        """(seconds of weekly GPU quota left, seconds reserved by running sessions)."""
        quota = self.call("GetAcceleratorQuotaStatistics", self.api.quota_view).gpu_quota
        allowed, used = _sdk.duration_s(quota.total_time_allowed), _sdk.duration_s(quota.time_used)
        reserved = _sdk.duration_s(quota.time_reserved)
        return allowed - used - reserved, reserved

    def running_gpu_kernels(self, reserved_s: float | None = None, limit: int = 50) -> list[str]:
        """The account's GPU kernels that are queued or running (private ones included).

        A running session reserves quota, so with ``reserved_s == 0`` (from ``gpu_quota``) no
        call is made at all. Otherwise the account's own kernels are listed in one call
        (``mine``: private ones too) and only GPU kernels run within Kaggle's 12 h session
        limit are asked for their status.
        """
        if reserved_s is not None and reserved_s <= 0:
            return []
        kernels = self.call(
            "ListKernels",
            lambda: self.api.kernels_list(mine=True, page_size=limit, sort_by="dateRun"),
        ) or []
        since = datetime.now(UTC) - timedelta(hours=12)
        busy = []
        for kernel in kernels:
            last_run = getattr(kernel, "last_run_time", None)
            if not getattr(kernel, "enable_gpu", False):
                continue
            if last_run is not None and _sdk.aware(last_run) < since:
                continue
            ref = kernel.ref.removeprefix("/code/")
            if self.status(ref)[0] in ("QUEUED", "RUNNING", "CANCEL_REQUESTED"):
                busy.append(ref)
        return busy

    # Datasets -------------------------------------------------------------------------------

    def create_dataset(self, folder: Path) -> None:
        """Create the private dataset described by ``folder/dataset-metadata.json``.

        If its slug is taken already, it is ours: an earlier attempt whose answer was lost (a
        timeout, then the retry), or a retry of the same step run. Then ``folder`` becomes a new
        version of it, so the kernel attaches exactly these files.
        """
        meta = json.loads((folder / "dataset-metadata.json").read_text())
        with contextlib.redirect_stdout(io.StringIO()):
            response = self.call(
                "CreateDataset",
                lambda: self.api.dataset_create_new(
                    str(folder), public=False, quiet=True, convert_to_csv=False, dir_mode="zip"
                ),
            )
        error = getattr(response, "error", None) or ""
        if "already in use" in error:
            log.info("dataset %s exists already (an earlier attempt): adding a version",
                     meta["id"])
            with contextlib.redirect_stdout(io.StringIO()):
                response = self.call(
                    "CreateDatasetVersion",
                    lambda: self.api.dataset_create_version(
                        str(folder), "nizami: the bundle of this step run", quiet=True,
                        convert_to_csv=False, dir_mode="zip",
                    ),
                )
            error = getattr(response, "error", None) or ""
        if error or (getattr(response, "status", "") or "").lower() not in ("ok", ""):
            raise KaggleApiError(f"Kaggle API CreateDataset {meta['id']} failed: {error}")

    def own_datasets(self, search: str, pages: int = 10) -> list[str]:
        """Refs (``owner/slug``) of this account's datasets matching ``search`` (private too)."""
        return self._own("ListDatasets", lambda p: self.api.dataset_list(mine=True,
                         search=search, page=p), 20, pages)

    def download_dataset(self, ref: str, path: Path) -> list[Path]:
        """Download every file of ``owner/slug[/version]`` into ``path``, unzipped."""
        self.call("DownloadDataset", lambda: self.api.dataset_download_files(
            ref, path=str(path), unzip=True, force=True, quiet=True))
        return sorted(p for p in path.rglob("*") if p.is_file())

    def delete_dataset(self, ref: str) -> None:
        """Delete the dataset ``owner/slug`` (missing is fine: it is gone)."""
        owner, _, slug = ref.partition("/")
        try:
            self.call("DeleteDataset",
                      lambda: self.api.dataset_delete(owner, slug, no_confirm=True))
        except KaggleApiError as error:
            if not is_missing(error):
                raise

    def wait_dataset_ready(self, ref: str, timeout_s: float = 600.0) -> None:
        """Block until Kaggle has processed the dataset's files (it walks through states)."""
        deadline = time.monotonic() + timeout_s
        delay = 0.5
        while True:
            status = str(self.call("GetDatasetStatus", lambda: self.api.dataset_status(ref)))
            if status.lower() == "ready":
                return
            if status.lower() in ("failed", "deleted"):
                raise KaggleApiError(f"dataset {ref} is {status}")
            if time.monotonic() > deadline:
                raise KaggleApiError(f"dataset {ref} not ready after {timeout_s:.0f}s ({status})")
            log.info("dataset %s: %s", ref, status.lower())
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    # Kernels ---------------------------------------------------------------------------------

    def current_version(self, slug: str) -> int | None:
        """The newest version number of our kernel ``slug``, or None if there is no such kernel."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        def get():
            with self.api.build_kaggle_client() as kaggle:
                request = ApiGetKernelRequest()
                request.user_name, request.kernel_slug = self.username, slug
                return kaggle.kernels.kernels_api_client.get_kernel(request)

        try:
            return int(self.call("GetKernel", get).metadata.current_version_number) or None
        except KaggleApiError as error:
            if is_missing(error):
                return None
            raise

    def push(self, folder: Path, slug: str, timeout_s: int | None) -> int:
        """Push ``folder`` (script + kernel-metadata.json); returns the new version number.

        A push whose answer was lost (5xx, timeout) may have been accepted. Before it is tried
        again, the kernel's newest version is looked up: a version newer than the one before
        the push is that push, and it is kept (not run twice). Nothing is deleted, so a resume
        push never loses the failed version whose output it resumes from.
        """
        before = self.current_version(slug)
        tries = 0

        def push_once():
            nonlocal tries
            if tries:
                landed = self.current_version(slug)
                if landed is not None and landed != before:
                    return landed
            tries += 1
            with contextlib.redirect_stdout(io.StringIO()):
                return self.api.kernels_push(str(folder), timeout=timeout_s)

        response = self.call("SaveKernel", push_once)
        if isinstance(response, int):
            log.warning("Kaggle accepted the push of %s as version %d although its answer was "
                        "lost: following that version", slug, response)
            return response
        if response.error:
            raise KaggleApiError(f"Kaggle refused the kernel push of {slug}: {response.error}")
        invalid = {
            what: list(getattr(response, f"invalid_{what}_sources", None) or [])
            for what in ("dataset", "kernel", "model", "competition")
        }
        invalid = {what: refs for what, refs in invalid.items() if refs}
        if invalid:  # Kaggle runs the kernel anyway, without them: stop it
            self.delete(slug, missing_ok=True)
            listed = "; ".join(f"{what} sources {', '.join(r)}" for what, r in invalid.items())
            raise KaggleApiError(
                f"Kaggle accepted the push of {slug} but not its {listed} (missing, private to "
                "someone else, or still processing): the kernel was deleted"
            )
        return int(response.version_number)

    def status(self, ref: str) -> tuple[str, str]:
        """(status name, failure message) of ``owner/slug[/version]``."""
        response = self.call("GetKernelSessionStatus", lambda: self.api.kernels_status(ref))
        status = response.status
        return getattr(status, "name", str(status)).upper(), response.failure_message or ""

    def log(self, ref: str) -> str:
        """The kernel's raw log (a JSON array of {stream_name, time, data} records)."""
        return self.call("ListKernelSessionOutput", lambda: self.api.kernels_logs(ref)) or ""

    def log_stream(self, ref: str) -> Iterator[str]:
        """The log of ``owner/slug/N`` as text chunks: live (SSE) while the session runs, the
        stored log once it ended. Not retried: the caller reconnects or falls back."""
        for event in self.api.kernels_logs_stream(ref):
            yield str(event.get("data", ""))

    def output_files(self, ref: str) -> list[str]:
        """The names of the output files of ``owner/slug/N`` (no download)."""
        names: list[str] = []
        token = None
        while True:
            page = self.call("ListKernelFiles", lambda t=token: self.api.kernels_list_files(
                ref, page_token=t, page_size=200))
            names += [f.name for f in page.files]
            token = page.next_page_token
            if not token:
                return names

    def download_output(self, ref: str, path: Path) -> list[str]:
        """Download every output file of ``ref`` into ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        files: list[str] = []
        token = None
        while True:
            page, token = self.call(
                "ListKernelSessionOutput",
                lambda t=token: self.api.kernels_output(
                    ref, str(path), force=True, quiet=True, page_token=t, page_size=100
                ),
            )
            files += page
            if not token:
                return files

    def own_kernels(self, search: str, pages: int = 10) -> list[str]:
        """Refs (``owner/slug``) of this account's kernels matching ``search`` (private too)."""
        return self._own("ListKernels", lambda p: self.api.kernels_list(
            mine=True, search=search, page=p, page_size=100), 100, pages)

    def _own(self, what: str, page_of: Callable[[int], list], size: int, pages: int) -> list[str]:
        refs: list[str] = []
        for page in range(1, pages + 1):
            found = self.call(what, lambda p=page: page_of(p)) or []
            refs += [str(item.ref).removeprefix("/code/") for item in found]
            if len(found) < size:
                break
        return refs

    def delete(self, slug: str, missing_ok: bool = False) -> None:
        """Delete the kernel (Kaggle's only reliable way to stop a session)."""
        try:
            self.call(
                "DeleteKernel",
                lambda: self.api.kernels_delete(f"{self.username}/{slug}", no_confirm=True),
            )
        except KaggleApiError as error:
            if not (missing_ok and is_missing(error)):
                raise



class ClientConfig(Protocol):
    """What :func:`make_client` reads: the ``kaggle`` step operator's config has it all."""

    api_token: str | None
    username: str | None
    key: str | None
    api_endpoint: str | None
    request_timeout_s: float
    max_retries: int


def make_client(config: ClientConfig) -> KaggleClient:
    """The one place a Kaggle client is built (tests point ``api_endpoint`` at the emulator).
    The log says which credential was used (never its value)."""
    credentials = resolve_credentials(config.api_token, config.username, config.key)
    client = KaggleClient(credentials, endpoint=config.api_endpoint,
                          timeout_s=config.request_timeout_s, max_retries=config.max_retries)
    log.info("Kaggle credentials: %s from %s (user %s)", credentials.kind, credentials.source,
             client.username)
    return client


def check_capacity(client: KaggleClient, machine_shape: str | None,
                   max_gpu_sessions: int) -> None:
    """Raises ``KaggleCapacityError`` (nothing was pushed) for a GPU kernel when the weekly
    quota is used up or all the account's GPU sessions are busy."""
    if machine_shape is None:
        return
    left, reserved = client.gpu_quota()
    if left <= 0:
        raise KaggleCapacityError(
            f"Kaggle GPU quota exhausted for this week ({-left / 3600:.1f} h over); nothing "
            "was pushed. Wait for the weekly refresh (`kaggle quota`) or run the step on CPU "
            "(machine_shape: null)."
        )
    busy = client.running_gpu_kernels(reserved)
    if len(busy) >= max_gpu_sessions:
        raise KaggleCapacityError(
            f"Kaggle allows {max_gpu_sessions} concurrent GPU sessions and these are running: "
            f"{', '.join(busy)}; nothing was pushed. Wait for one to finish or delete it "
            "(`kaggle kernels delete <ref>`)."
        )
    log.info("Kaggle GPU quota left: %.1f h; GPU sessions running: %d", left / 3600, len(busy))

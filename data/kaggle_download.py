"""Download a Kaggle dataset into a DVC-tracked folder: the command of the ``kaggle_data`` stage.

``dvc repro kaggle_data`` runs it with the handle in ``params.yaml`` (``kaggle_data.dataset``:
``owner/slug``, or ``owner/slug/<version>`` to pin a version) and DVC versions the result
(``dvc.lock`` records its md5; ``dvc push`` stores it in the remote)::

    python data/kaggle_download.py --dataset owner/slug[/version] --out data/kaggle

Credentials are the kaggle client's usual ones: ``KAGGLE_USERNAME``/``KAGGLE_KEY`` or
``~/.kaggle/kaggle.json``. Every call has a timeout; 429, 5xx and connection errors are retried
with backoff (honouring ``Retry-After``). The folder is replaced only once the whole download
succeeded.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("kaggle_download")
TRANSIENT = {429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """A download that cannot succeed as asked (no credentials, unknown dataset...)."""


def _kaggle_api():
    """An authenticated ``KaggleApi`` (its import authenticates and may print help)."""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as e:
        raise DownloadError("the kaggle client is not installed (pip install kaggle)") from e
    api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit as e:  # the client calls exit(1) when it finds no credentials
        raise DownloadError(
            "no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or write "
            "~/.kaggle/kaggle.json (mode 600)"
        ) from e
    return api


def _status(error: Exception) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def download(dataset: str, out: Path, attempts: int = 5, backoff_s: float = 2.0) -> list[Path]:
    """Download every file of ``dataset`` (unzipped) into ``out``, replacing what is there.

    Args:
        dataset: ``owner/slug`` or ``owner/slug/<version>``.
        out: The folder to fill.
        attempts: Tries per download before giving up on transient errors.
        backoff_s: The first wait between tries (doubled each time).

    Returns:
        The files written, sorted.

    Raises:
        DownloadError: On a missing or inaccessible dataset, bad credentials, or transient
            errors that outlast the retries.
    """
    import requests

    if dataset.count("/") not in (1, 2) or not all(dataset.split("/")):
        raise DownloadError(f"dataset {dataset!r} is not of the form owner/slug[/version]")
    api = _kaggle_api()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kaggle-download-", dir=out.parent))
    try:
        delay = backoff_s
        for attempt in range(1, attempts + 1):
            try:
                api.dataset_download_files(dataset, path=str(staging), unzip=True, force=True)
                break
            except (requests.HTTPError, requests.ConnectionError, requests.Timeout) as e:
                status = _status(e)
                if status in (401, 403):
                    raise DownloadError(
                        f"Kaggle refused access to dataset {dataset} (HTTP {status}): check the "
                        "credentials and that this account can see the dataset"
                    ) from e
                if status == 404:
                    raise DownloadError(f"Kaggle dataset {dataset} not found (HTTP 404)") from e
                if (status is not None and status not in TRANSIENT) or attempt == attempts:
                    raise DownloadError(f"downloading Kaggle dataset {dataset} failed: {e}") from e
                wait = _retry_after(e) or delay
                log.warning(
                    "download of %s failed (%s); retry %d in %.1fs", dataset, e, attempt, wait
                )
                time.sleep(wait)
                delay *= 2
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        if not files:
            raise DownloadError(f"Kaggle dataset {dataset} has no files")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = sorted(p for p in out.rglob("*") if p.is_file())
    log.info("downloaded %s: %s", dataset, ", ".join(str(p) for p in written))
    return written


def main(argv: list[str] | None = None) -> int:
    """The stage's command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", required=True, help="owner/slug or owner/slug/<version>")
    parser.add_argument("--out", type=Path, required=True, help="folder to fill (replaced)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per network read")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    socket.setdefaulttimeout(args.timeout)  # the kaggle client sets no timeout on API calls
    try:
        download(args.dataset, args.out)
    except DownloadError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Download a Kaggle dataset into a DVC-tracked folder: the command of the ``kaggle_data`` stage.

``dvc repro kaggle_data`` runs it with the handle in ``params.yaml`` (``kaggle_data.dataset``:
``owner/slug``, or ``owner/slug/<version>`` to pin a version) and DVC versions the result
(``dvc.lock`` records its md5; ``dvc push`` stores it in the remote)::

    python data/kaggle_download.py --dataset owner/slug[/version] --out data/kaggle

It uses the step operator's Kaggle client (``kaggle_orchestrator.client``): the same credential
order (``KAGGLE_API_TOKEN``, ``~/.kaggle/access_token``, then ``KAGGLE_USERNAME``/``KAGGLE_KEY``
or ``kaggle.json``), a timeout on every call, and the one retry policy (429, 5xx and connection
errors, honouring ``Retry-After``). The folder is replaced only once the whole download
succeeded.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from kaggle_orchestrator.client import KaggleApiError, KaggleClient
from kaggle_orchestrator.credentials import KaggleAuthError, resolve_credentials
from kaggle_orchestrator.retry import status_of

log = logging.getLogger("kaggle_download")


class DownloadError(RuntimeError):
    """A download that cannot succeed as asked (no credentials, unknown dataset...)."""


def download(dataset: str, out: Path, client: KaggleClient | None = None) -> list[Path]:
    """Download every file of ``dataset`` (unzipped) into ``out``, replacing what is there.

    Args:
        dataset: ``owner/slug`` or ``owner/slug/<version>``.
        out: The folder to fill.
        client: The Kaggle client (default: one from the usual credentials).

    Returns:
        The files written, sorted.

    Raises:
        DownloadError: On a missing or inaccessible dataset, bad credentials, or transient
            errors that outlast the retries.
    """
    if dataset.count("/") not in (1, 2) or not all(dataset.split("/")):
        raise DownloadError(f"dataset {dataset!r} is not of the form owner/slug[/version]")
    try:
        client = client or KaggleClient(resolve_credentials(), timeout_s=120.0)
    except KaggleAuthError as e:
        raise DownloadError(str(e)) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kaggle-download-", dir=out.parent))
    try:
        try:
            files = client.download_dataset(dataset, staging)
        except KaggleApiError as e:
            status = status_of(e.__cause__) if e.__cause__ else None
            if status in (401, 403):
                raise DownloadError(
                    f"Kaggle refused access to dataset {dataset} (HTTP {status}): check the "
                    "credentials and that this account can see the dataset"
                ) from e
            if status == 404:
                raise DownloadError(f"Kaggle dataset {dataset} not found (HTTP 404)") from e
            raise DownloadError(f"downloading Kaggle dataset {dataset} failed: {e}") from e
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        download(args.dataset, args.out)
    except DownloadError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

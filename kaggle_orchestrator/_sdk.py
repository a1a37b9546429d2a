"""Every place this project reaches into the kaggle client's or kagglesdk's private parts.

kaggle 2.2.5 has no endpoint setting and no HTTP timeouts, so two internals are needed: the
table mapping kagglesdk's environments to base URLs (to point ``--local`` at a
Kaggle-compatible server), and the ``requests`` session a ``KaggleHttpClient`` creates lazily
(to mount an adapter with a timeout). And the package authenticates when it is first imported,
so it is imported here with no credential in sight (:func:`import_kaggle_api`).
``tests/unit/test_kaggle_sdk.py`` checks that the internals are still where this module expects
them, so a kagglesdk upgrade that moves them fails loudly there instead of silently dropping
timeouts or talking to the wrong server.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
import tempfile
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter


def set_local_endpoint(url: str) -> str:
    """Point kagglesdk's LOCAL environment at ``url``; returns the previous endpoint."""
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    before = _env_to_endpoint[KaggleEnv.LOCAL]
    _env_to_endpoint[KaggleEnv.LOCAL] = url.rstrip("/")
    return before


def http_session(kaggle_client: Any) -> requests.Session:
    """The ``requests.Session`` behind a ``kagglesdk.KaggleClient`` (created now if needed)."""
    http = kaggle_client.http_client()
    http._init_session()
    return http._session


class TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout unless the caller set one."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request, **kwargs):  # noqa: ANN001 - requests' signature
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def kaggle_api(timeout_s: float, endpoint: str | None) -> Any:
    """A ``KaggleApi`` that never authenticates by itself, whose HTTP sessions all time out
    after ``timeout_s``, talking to Kaggle or (``endpoint``) to a compatible server."""
    base = import_kaggle_api()
    adapter = TimeoutAdapter(timeout_s)

    class _Api(base):  # one subclass per client: its sessions get the timeout adapter
        def build_kaggle_client(self):
            client = super().build_kaggle_client()
            session = http_session(client)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            return client

    api = _Api()
    api._authenticated = True  # credentials are passed explicitly (``KaggleClient``)
    if endpoint:
        set_local_endpoint(endpoint)
        api.args = [*base.args, "--local"]
    return api


def duration_s(duration: object) -> float:
    """kagglesdk durations: timedelta, "123s" or a number."""
    if duration is None or duration == "":
        return 0.0
    if hasattr(duration, "total_seconds"):
        return float(duration.total_seconds())
    return float(str(duration).rstrip("s") or 0)


def aware(when: datetime) -> datetime:
    """kagglesdk's times may come without a zone: they are UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# What ``import kaggle`` reads to authenticate (over the network, with no timeout) at import.
_IMPORT_TIME_CREDENTIALS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY",
                            "KAGGLE_CONFIG_DIR", "KAGGLE_API_V1_TOKEN_PATH", "HOME")


def import_kaggle_api():
    """``KaggleApi``, imported without the package's import-time authentication.

    ``kaggle/__init__.py`` authenticates when first imported: with a token it asks Kaggle who
    owns it (IntrospectToken) with no timeout, so an unreachable Kaggle or a dead proxy hangs
    the import for ever, and it prints help text without credentials. The first import
    therefore sees no credential (an empty HOME and config folder); the client module is then
    loaded again with the real environment (its class attributes hold the config folder).
    ``KaggleClient`` passes its credentials explicitly and every later call has a timeout.
    """
    if "kaggle" not in sys.modules:
        saved = {name: os.environ.pop(name, None) for name in _IMPORT_TIME_CREDENTIALS}
        try:
            with tempfile.TemporaryDirectory(prefix="nizami-kaggle-import-") as empty:
                os.environ["HOME"] = os.environ["KAGGLE_CONFIG_DIR"] = empty
                with contextlib.redirect_stdout(io.StringIO()), \
                        contextlib.redirect_stderr(io.StringIO()):
                    import kaggle  # noqa: F401
        finally:
            for name, value in saved.items():
                os.environ.pop(name, None) if value is None else os.environ.__setitem__(
                    name, value)
        with contextlib.redirect_stdout(io.StringIO()):
            importlib.reload(sys.modules["kaggle.api.kaggle_api_extended"])
    from kaggle.api.kaggle_api_extended import KaggleApi

    return KaggleApi

"""Every place this project reaches into the kaggle client's or kagglesdk's private parts.

kaggle 2.2.5 has no endpoint setting and no HTTP timeouts, so two internals are needed: the
table mapping kagglesdk's environments to base URLs (to point ``--local`` at a
Kaggle-compatible server), and the ``requests`` session a ``KaggleHttpClient`` creates lazily
(to mount an adapter with a timeout). ``tests/unit/test_kaggle_sdk.py`` checks that both are
still where this module expects them, so a kagglesdk upgrade that moves them fails loudly there
instead of silently dropping timeouts or talking to the wrong server.
"""

from __future__ import annotations

from typing import Any

import requests


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

"""The kaggle client's private parts that ``kaggle_orchestrator/_sdk.py`` reaches into are still
where it expects them: a kagglesdk upgrade that moves them fails here, loudly, instead of
silently dropping the HTTP timeouts or talking to the wrong server."""

from __future__ import annotations

import requests

from kaggle_orchestrator import _sdk


def test_the_local_endpoint_table_is_where_set_local_endpoint_writes():
    from kagglesdk.kaggle_env import KaggleEnv, get_endpoint

    before = _sdk.set_local_endpoint("http://127.0.0.1:9/")
    try:
        assert get_endpoint(KaggleEnv.LOCAL) == "http://127.0.0.1:9"
    finally:
        assert _sdk.set_local_endpoint(before) == "http://127.0.0.1:9"
    assert get_endpoint(KaggleEnv.LOCAL) == before


def test_a_kaggle_client_has_the_requests_session_http_session_returns():
    from kagglesdk import KaggleClient
    from kagglesdk.kaggle_env import KaggleEnv

    with KaggleClient(env=KaggleEnv.LOCAL, username="u", password="p") as kaggle:
        session = _sdk.http_session(kaggle)
        assert isinstance(session, requests.Session)
        assert _sdk.http_session(kaggle) is session  # the one the client's calls use

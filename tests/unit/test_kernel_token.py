"""kernel_token.py against a hand-written stand-in for the two ZenML server endpoints it calls
(``/api/v1/login``, ``/api/v1/api_token``); the real server is driven by
tests/integration/test_kaggle_server_mode.py."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from kaggle_orchestrator.step_operators.kernel_token import KernelTokenError, kernel_token

RUN = uuid.uuid4()


def _jwt(**claims) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{body}.sig"


class FakeServer:
    """Answers like ZenML: login with an API key, then api_token by type."""

    def __init__(self, exp: bool = True, login_status: int = 200) -> None:
        self.exp, self.login_status = exp, login_status
        self.calls: list[tuple[str, str, dict]] = []  # (path, bearer, query or form)

    def answer(self, path: str, bearer: str, params: dict) -> tuple[int, object]:
        self.calls.append((path, bearer, params))
        if path == "/api/v1/login":
            if self.login_status != 200:
                return self.login_status, {"detail": "invalid API key"}
            return 200, {"access_token": "session-of-" + params["password"]}
        if params["token_type"] == "workload":
            return 200, _jwt(sub="kernel", pipeline_run_id=params["pipeline_run_id"])
        scope = json.loads(base64.urlsafe_b64decode(bearer.split(".")[1] + "=="))
        return 200, _jwt(**scope, **({"exp": 2_000_000_000} if self.exp else {}))


@pytest.fixture
def server(request) -> Iterator[tuple[str, FakeServer]]:
    fake = FakeServer(**getattr(request, "param", {}))

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, params: dict) -> None:
            bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
            status, body = fake.answer(urlparse(self.path).path, bearer, params)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            query = parse_qs(urlparse(self.path).query)
            self._reply({k: v[0] for k, v in query.items()})

        def do_POST(self) -> None:  # noqa: N802
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            self._reply({k: v[0] for k, v in form.items()})

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", fake
    finally:
        httpd.shutdown()


def test_the_kernel_account_gets_a_run_scoped_token_that_expires(server):
    url, fake = server
    token = kernel_token(url, RUN, 3600, runner_token="runner-token", kernel_api_key="ZENKEY_k")
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims == {"sub": "kernel", "pipeline_run_id": str(RUN), "exp": 2_000_000_000}
    (login, workload, generic) = fake.calls
    assert login[0] == "/api/v1/login" and login[2]["grant_type"] == "zenml-api-key"
    assert workload[1] == "session-of-ZENKEY_k"  # the kernel account's, not the runner's token
    assert workload[2] == {"token_type": "workload", "pipeline_run_id": str(RUN)}
    assert generic[2] == {"token_type": "generic", "expires_in": "3600"}
    assert all("runner-token" not in call[1] for call in fake.calls)


def test_without_a_kernel_account_zenmls_token_gets_the_expiry(server):
    url, fake = server
    runners = _jwt(sub="runner", pipeline_run_id=str(RUN))
    token = kernel_token(url, RUN, 600, runner_token=runners, kernel_api_key=None)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
    assert [(c[0], c[1]) for c in fake.calls] == [("/api/v1/api_token", runners)]


@pytest.mark.parametrize("server", [{"login_status": 401}], indirect=True)
def test_a_refused_kernel_key_says_so(server):
    url, _ = server
    with pytest.raises(KernelTokenError, match="kernel's service account.*401"):
        kernel_token(url, RUN, 600, runner_token=None, kernel_api_key="ZENKEY_bad")


@pytest.mark.parametrize("server", [{"exp": False}], indirect=True)
def test_a_token_without_expiry_is_refused(server):
    url, _ = server
    with pytest.raises(KernelTokenError, match="no expiry"):
        kernel_token(url, RUN, 600, runner_token=None, kernel_api_key="ZENKEY_k")

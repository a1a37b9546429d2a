"""The ZenML API token a server-mode kernel gets: the tightest that ZenML OSS 0.98 can mint.

What ZenML OSS allows (read from ``zenml/zen_server``, 0.98):

- **No RBAC.** Every authenticated account may read and write every run, stack, component,
  model and service connector (``rbac_enabled`` is false: every permission check passes). A
  token acts as the account it was minted for; no token type narrows that.
- **Secrets are the one exception**: a *private* secret (``zenml secret create --private``) is
  readable, listed and resolvable only by the account that owns it. Public secrets, with their
  values, are readable by every account.
- **Workload tokens** (``/api/v1/api_token?token_type=workload&pipeline_run_id=``) are scoped to
  one pipeline run: the server refuses them once the run has finished, after the server's
  ``ZENML_WORKLOAD_TOKEN_EXPIRATION_LEEWAY`` (default 3600 s; the run's status is cached for up
  to ``memcache_default_expiry``, 30 s) and can only mint more tokens for the same run. They
  carry no ``exp``. The scope is a lifetime, not a permission: during the run the token reaches
  everything its account can.
- A *generic* token requested **with** a run-scoped token keeps the run scope and gets an
  ``exp`` (``expires_in``, capped by the server's ``generic_api_token_max_lifetime``).
- A workload token carries its API key's id: deactivating or deleting the key refuses it at once.

So the kernel's token is minted for a **dedicated service account** (the operator's
``kernel_api_key``: the API key of an account that owns no private secret), scoped to the run,
and exchanged for one that also expires ``timeout_s`` + a margin after the push. Secrets the
kernel does not need are created ``--private`` by the runner's account; the kernel then cannot
read them. Without ``kernel_api_key`` the kernel's token is ZenML's own, for the runner's
account (it can read that account's private secrets too), still with the ``exp`` added.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import UUID

import requests

TOKEN_TYPE_WORKLOAD = "workload"
TOKEN_TYPE_GENERIC = "generic"
# Between the push and the kernel's start: the bundle's upload, Kaggle's queue, the installs.
MARGIN_S = 900
_TIMEOUT_S = 60


class KernelTokenError(RuntimeError):
    """The kernel's token could not be minted as configured; the message says why."""


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a ZenML API token (a JWT), read without verifying it."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise KernelTokenError("the ZenML API token for the step is not a JWT") from error


def _call(method: str, url: str, verify: bool | str, what: str, **kwargs: Any) -> Any:
    try:
        answer = requests.request(method, url, timeout=_TIMEOUT_S, verify=verify, **kwargs)
    except requests.RequestException as error:
        raise KernelTokenError(f"{what}: {error}") from error
    if answer.status_code >= 400:
        raise KernelTokenError(f"{what}: the ZenML server answered {answer.status_code}: "
                               f"{answer.text[:300]}")
    return answer.json()


def _api_token(server: str, bearer: str, verify: bool | str, what: str, **params: Any) -> str:
    return _call("GET", f"{server}/api/v1/api_token", verify, what, params=params,
                 headers={"Authorization": f"Bearer {bearer}"})


def kernel_token(server: str, run_id: UUID, lifetime_s: int, runner_token: str | None,
                 kernel_api_key: str | None, verify: bool | str = True) -> str:
    """A token scoped to ``run_id`` that expires ``lifetime_s`` from now.

    Args:
        server: The ZenML server's URL.
        run_id: The pipeline run the token is for.
        lifetime_s: Seconds until the token's ``exp``.
        runner_token: ZenML's run-scoped token for the step (used without ``kernel_api_key``).
        kernel_api_key: The API key of the kernel's dedicated service account, or None.
        verify: TLS verification, as the ZenML store is configured.

    Raises:
        KernelTokenError: The server refused a call, or the token is not what was asked for.
    """
    if kernel_api_key:
        login = _call("POST", f"{server}/api/v1/login", verify,
                      "logging in with the kernel's service account (kernel_api_key)",
                      data={"grant_type": "zenml-api-key", "password": kernel_api_key})
        scoped = _api_token(server, login["access_token"], verify,
                            "minting the kernel account's token for the run",
                            token_type=TOKEN_TYPE_WORKLOAD, pipeline_run_id=str(run_id))
    elif runner_token:
        scoped = runner_token
    else:
        raise KernelTokenError("no ZenML API token for the step: is the store a ZenML server "
                               "with authentication?")
    token = _api_token(server, scoped, verify, "adding an expiry to the kernel's token",
                       token_type=TOKEN_TYPE_GENERIC, expires_in=lifetime_s)
    claims = token_claims(token)
    if claims.get("pipeline_run_id") != str(run_id) or not claims.get("exp"):
        raise KernelTokenError("the ZenML server returned a kernel token that is not scoped to "
                               "the run or has no expiry")
    return token

"""Point the real kaggle client at an emulator, in another process or in this one.

The ``kaggle`` CLI has no endpoint setting (kaggle 2.2.5 reads it from kagglesdk's table of
environments, ``kagglesdk.kaggle_env``); what it does
have is Kaggle's own dev mode, ``KAGGLE_API_ENVIRONMENT=LOCALHOST``, which talks to kagglesdk's
LOCAL endpoint, ``http://localhost``. Two ways to move that endpoint:

- another process (the ``kaggle`` CLI, a ``dvc repro`` stage, any script using ``KaggleApi``):
  run it with ``client_env(url, username, key)`` — ``KAGGLE_API_ENVIRONMENT=LOCALHOST``,
  ``KAGGLE_EMULATOR_URL=<url>`` and this package's ``hook/`` folder first on ``PYTHONPATH``,
  whose ``sitecustomize`` rewrites the endpoint when the interpreter starts;
- this process: ``with kagglesdk_endpoint(url):`` and build the client for the LOCAL
  environment (``kagglesdk.KaggleClient(env=KaggleEnv.LOCAL, username=..., password=...)``, or
  ``KaggleApi`` with ``"--local"`` in ``KaggleApi.args``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

HOOK_DIR = Path(__file__).resolve().with_name("hook")
_NO_PROXY = "127.0.0.1,localhost,::1"


def client_env(
    url: str,
    username: str,
    key: str,
    *,
    home: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a process whose kaggle client must talk to the emulator at ``url``.

    Args:
        url: The emulator's base URL (``KaggleEmulator.url``).
        username: The emulator's username (sent as ``KAGGLE_USERNAME``).
        key: Its key (``KAGGLE_KEY``).
        home: If given, ``HOME`` and ``KAGGLE_CONFIG_DIR`` (``<home>/.kaggle``) go there, so no
            real ``~/.kaggle`` token or ``kaggle.json`` of the user's can win over the key.
        base: The environment to start from (default: this process's); every ``KAGGLE_*``
            variable in it is dropped first.

    Returns:
        A complete environment for ``subprocess``.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    for name in [n for n in env if n.startswith("KAGGLE_")]:
        del env[name]
    env.update(
        {
            "KAGGLE_API_ENVIRONMENT": "LOCALHOST",
            "KAGGLE_EMULATOR_URL": url.rstrip("/"),
            "KAGGLE_USERNAME": username,
            "KAGGLE_KEY": key,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HOOK_DIR), env.get("PYTHONPATH")])),
        }
    )
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), _NO_PROXY]))
    if home is not None:
        config_dir = Path(home) / ".kaggle"
        config_dir.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        env["KAGGLE_CONFIG_DIR"] = str(config_dir)
    return env


@contextmanager
def kagglesdk_endpoint(url: str) -> Iterator[None]:
    """Within the block, kagglesdk's LOCAL environment talks to ``url`` (in this process).

    Clients built inside the block keep the endpoint (kagglesdk reads it when a client is
    built). The previous endpoint is restored on exit.
    """
    from kagglesdk import kaggle_env

    before = kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL]
    kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = url.rstrip("/")
    try:
        yield
    finally:
        kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = before

"""Which Kaggle credential the operator uses, found in the order Kaggle's own client uses.

New Kaggle accounts get an **API token** (``KGAT_...``), sent as ``Authorization: Bearer``;
older ones a user name and **legacy key**, sent as HTTP Basic auth. kagglesdk prefers a token
found in the environment over an explicit key, so a token lying around would silently win over
a configured key; the order here makes that explicit, and the client refuses a token whose
owner differs from a configured user name (see ``KaggleClient``). In order:

1. ``api_token`` of the step operator (a ZenML secret reference, ``{{kaggle.token}}``);
2. ``KAGGLE_API_TOKEN`` (the token, or the path of a file holding it);
3. ``~/.kaggle/access_token`` (or ``access_token.txt``);
4. the legacy ``username``/``key``: the operator's settings, then ``KAGGLE_USERNAME`` /
   ``KAGGLE_KEY``, then ``kaggle.json`` in ``KAGGLE_CONFIG_DIR`` or ``~/.kaggle``.

The step log names the source that was used, never the value.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path


class KaggleAuthError(RuntimeError):
    """No usable credential, or one that belongs to another user than the configured one."""


@dataclass(frozen=True)
class Credentials:
    """A Kaggle credential (kept in memory only; ``repr`` never shows the secret).

    Attributes:
        username: The configured user name (for a token: checked against its owner).
        key: A legacy API key, or None.
        token: An API token, or None.
        source: Where it came from, for the log (``KAGGLE_API_TOKEN``, ``kaggle.json``...).
    """

    username: str | None
    key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = "explicit"

    def __post_init__(self) -> None:
        if not self.token and not (self.username and self.key):
            raise KaggleAuthError(f"{self.source}: a token, or a user name and a key, is needed")

    @property
    def kind(self) -> str:
        """``API token`` or ``legacy key``."""
        return "API token" if self.token else "legacy key"


def _token_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ambient_token() -> tuple[str, str] | None:
    """A token in the environment or the home folder, as kagglesdk finds it: (token, source)."""
    value = os.environ.get("KAGGLE_API_TOKEN", "").strip()
    if value:
        from_file = _token_file(Path(value)) if Path(value).is_file() else None
        return from_file or value, "KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt"):
        token = _token_file(Path.home() / ".kaggle" / name)
        if token:
            return token, f"~/.kaggle/{name}"
    return None


def _kaggle_json() -> tuple[dict, str] | None:
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    candidates = [Path(config_dir)] if config_dir else []
    candidates += [Path.home() / ".kaggle", Path.home() / ".config" / "kaggle"]
    for folder in candidates:
        path = folder / "kaggle.json"
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8")), str(path)
            except (OSError, ValueError) as error:
                raise KaggleAuthError(f"{path}: not readable as JSON: {error}") from error
    return None


def resolve_credentials(
    token: str | None = None, username: str | None = None, key: str | None = None
) -> Credentials:
    """The credential to use, in the order of the module docstring.

    Args:
        token: The operator's ``api_token`` setting.
        username: The operator's ``username`` setting (also the expected owner of a token).
        key: The operator's legacy ``key`` setting.

    Raises:
        KaggleAuthError: Nothing found; the message lists every place looked at.
    """
    username = username or os.environ.get("KAGGLE_USERNAME") or None
    if token:
        return Credentials(username, token=token, source="step operator api_token")
    found = ambient_token()
    if found:
        return Credentials(username, token=found[0], source=found[1])
    if username and (key or os.environ.get("KAGGLE_KEY")):
        source = "step operator username/key" if key else "KAGGLE_USERNAME/KAGGLE_KEY"
        return Credentials(username, key=key or os.environ["KAGGLE_KEY"], source=source)
    stored = _kaggle_json()
    if stored and stored[0].get("username") and stored[0].get("key"):
        return Credentials(stored[0]["username"], key=stored[0]["key"], source=stored[1])
    raise KaggleAuthError(
        "no Kaggle credentials: set the step operator's api_token (a ZenML secret: "
        "`zenml step-operator update kaggle --api_token='{{kaggle.token}}'`), "
        "KAGGLE_API_TOKEN or ~/.kaggle/access_token (new accounts), or the legacy "
        "username/key (settings, KAGGLE_USERNAME/KAGGLE_KEY, or ~/.kaggle/kaggle.json)"
    )


def token_owner(credentials: Credentials, active: bool, owner: str | None) -> str:
    """The user a token belongs to, from Kaggle's answer to IntrospectToken (``active``,
    ``owner``), checked against the configured user name.

    Raises:
        KaggleAuthError: The token is not valid, or belongs to another user.
    """
    if not active or not owner:
        raise KaggleAuthError(f"the Kaggle API token from {credentials.source} is not valid "
                              "(expired or revoked): create a new one on kaggle.com/settings")
    if credentials.username and credentials.username.lower() != owner.lower():
        raise KaggleAuthError(
            f"the Kaggle API token from {credentials.source} belongs to {owner!r}, not to the "
            f"configured user {credentials.username!r}: remove the token or set the matching "
            "user name"
        )
    return owner

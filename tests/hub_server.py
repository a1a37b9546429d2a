"""A tiny in-memory stand-in for the Hugging Face Hub, for tests that drive the real client.

It mimics ONLY the parts of the Hub HTTP API that ``huggingface_hub`` (checked against 2.4.0)
uses for the calls below, for model repos only:

- ``whoami``               GET    /api/whoami-v2
- ``create_repo``          POST   /api/repos/create
- ``delete_repo``          DELETE /api/repos/delete
- ``list_models``          GET    /api/models?author=&search=  (one page)
- ``model_info``           GET    /api/models/{repo_id}[/revision/{revision}]
- ``list_repo_refs``       GET    /api/models/{repo_id}/refs
- ``list_repo_tree``       GET    /api/models/{repo_id}/tree/{revision}[/{path}]  (one page)
- ``create_commit``        POST   /api/models/{repo_id}/preupload/{revision}
  (``upload_folder``)      POST   /api/models/{repo_id}/commit/{revision}  (NDJSON)
  (README.md in a commit) POST   /api/validate-yaml  (the card's YAML front matter must parse)
- ``create_tag``           POST   /api/models/{repo_id}/tag/{revision}
- ``delete_tag``           DELETE /api/models/{repo_id}/tag/{tag}
- ``hf_hub_download`` /    HEAD   /{repo_id}/resolve/{revision}/{filename}
  ``snapshot_download``    GET    /{repo_id}/resolve/{revision}/{filename}

Uploads are always "regular": the preupload answer marks every file ``uploadMode: "regular"``,
so the client inlines each file as base64 in the commit and never tries LFS or Xet (an
``lfsFile`` commit line is refused with 400). Downloads never carry ``X-Xet-*`` headers, so the
client downloads over plain HTTP. No PRs, no branches besides ``main``, no copies, no datasets
or spaces, no pagination (one page of tree entries), no gitignore handling.

Like the real Hub, a new repo starts with one commit holding a ``.gitattributes`` file.
Writes need ``Authorization: Bearer <token>`` with a known token (401 otherwise); a private repo
reads as "not found" (401 ``RepoNotFound``, as the Hub does) without a valid token. Unknown
repos, revisions and files give 404 with the ``X-Error-Code`` header the client maps to
``RepositoryNotFoundError`` / ``RevisionNotFoundError`` / ``RemoteEntryNotFoundError``; an
existing tag gives 409 (the client raises a plain ``HfHubHTTPError``, status 409).

``LocalHub.fail_next_commit()`` makes the next commit request answer 500 without applying it;
``LocalHub.fail_next(method, path_end, status, headers)`` makes the next requests to a path
answer ``status`` (e.g. 429 with ``Retry-After``). ``HubState.requests`` logs every request as
``(method, path)``.

Usage::

    with LocalHub() as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)

or as a fixture: ``local_hub = local_hub_fixture()`` in a test module or conftest (it also
lets ``huggingface_hub`` out of the tests' offline mode).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from huggingface_hub import constants
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kaggle_emulator.background import BackgroundServer

DEFAULT_TOKEN = "test-token"
DEFAULT_USER = "tester"
GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_sha(content: bytes) -> str:
    """The git blob id of ``content`` (what the Hub uses as a regular file's oid and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    files: dict[str, bytes]
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """A branch, a tag, a full commit sha or an unambiguous sha prefix (7+ chars)."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.tags:
            return self.commits[self.tags[revision]]
        if revision in self.commits:
            return self.commits[revision]
        if len(revision) >= 7:
            hits = [c for oid, c in self.commits.items() if oid.startswith(revision.lower())]
            if len(hits) == 1:
                return hits[0]
        return None


@dataclass
class Fault:
    """The next ``count`` requests ``method`` to a path ending in ``path_end`` get ``status``."""

    method: str
    path_end: str
    status: int
    headers: dict[str, str]
    count: int


class HubState:
    """The repos, tokens and fault flags behind the app (shared with ``LocalHub``)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.tokens = tokens if tokens is not None else {DEFAULT_TOKEN: DEFAULT_USER}
        self.repos: dict[str, Repo] = {}
        self.fail_commits = 0
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def new_commit(
        self, repo: Repo, parent: str | None, files: dict[str, bytes], title: str, desc: str
    ) -> Commit:
        date = _now()
        manifest = json.dumps(
            {
                "parent": parent,
                "files": {p: git_blob_sha(c) for p, c in sorted(files.items())},
                "title": title,
                "description": desc,
                "date": date,
                "nonce": time.monotonic_ns(),
            },
            sort_keys=True,
        )
        oid = hashlib.sha1(manifest.encode()).hexdigest()
        commit = Commit(oid, parent, title, desc, dict(files), date)
        repo.commits[oid] = commit
        return commit


# --- helpers ---------------------------------------------------------------------------------


def _error(
    status: int,
    message: str,
    code: str | None = None,
    body: dict[str, Any] | None = None,
    **headers: str,
) -> JSONResponse:
    hdrs = {"X-Error-Message": message, **headers}
    if code is not None:
        hdrs["X-Error-Code"] = code
    return JSONResponse({"error": message, **(body or {})}, status_code=status, headers=hdrs)


def _user(state: HubState, request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    return state.tokens.get(auth[7:].strip())


def _need_user(state: HubState, request: Request) -> str | Response:
    user = _user(state, request)
    if user is None:
        return _error(401, "Invalid credentials in Authorization header")
    return user


def _repo_for(state: HubState, request: Request, write: bool = False) -> Repo | Response:
    """Look the repo up, enforcing auth for writes and for private repos."""
    repo_id = f"{request.path_params['ns']}/{request.path_params['name']}"
    user = _user(state, request)
    if write and user is None:
        return _error(401, "Invalid credentials in Authorization header")
    repo = state.repos.get(repo_id)
    if repo is None:
        return _error(404, "Repository not found", "RepoNotFound")
    if repo.private and user is None:
        return _error(401, "Repository not found", "RepoNotFound")
    return repo


def _commit_for(repo: Repo, revision: str) -> Commit | Response:
    commit = repo.resolve(revision)
    if commit is None:
        return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
    return commit


def _read_at_revision(state: HubState, request: Request) -> tuple[Repo, Commit] | Response:
    """The repo and the commit its ``revision`` path parameter names (``main`` if absent)."""
    repo = _repo_for(state, request)
    if isinstance(repo, Response):
        return repo
    commit = _commit_for(repo, request.path_params.get("revision", "main"))
    if isinstance(commit, Response):
        return commit
    return repo, commit


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# --- endpoints -------------------------------------------------------------------------------


def build_app(state: HubState) -> Starlette:
    async def create_repo(request: Request) -> Response:
        user = _need_user(state, request)
        if isinstance(user, Response):
            return user
        body = await request.json()
        if body.get("type", "model") != "model":
            return _error(400, "Only model repos are supported by this fake Hub")
        name = body.get("name")
        if not name:
            return _error(400, "Missing name")
        repo_id = f"{body.get('organization') or user}/{name}"
        with state.lock:
            if repo_id in state.repos:  # the Hub's 409 body names the repo's url too
                url = f"{_base(request)}/{repo_id}"
                return _error(409, "You already created this model repo", body={"url": url})
            private = body.get("visibility") == "private" or bool(body.get("private"))
            repo = Repo(repo_id=repo_id, private=private, created_at=_now())
            first = state.new_commit(
                repo, None, {".gitattributes": GITATTRIBUTES}, "initial commit", ""
            )
            repo.branches["main"] = first.oid
            state.repos[repo_id] = repo
        return JSONResponse({"url": f"{_base(request)}/{repo_id}", "name": repo_id, "id": repo_id})

    async def whoami(request: Request) -> Response:
        user = _need_user(state, request)
        if isinstance(user, Response):
            return user
        return JSONResponse({"type": "user", "name": user, "fullname": user, "orgs": []})

    async def delete_repo(request: Request) -> Response:
        user = _need_user(state, request)
        if isinstance(user, Response):
            return user
        body = await request.json()
        repo_id = f"{body.get('organization') or user}/{body.get('name')}"
        with state.lock:
            if state.repos.pop(repo_id, None) is None:
                return _error(404, "Repository not found", "RepoNotFound")
        return JSONResponse({})

    async def list_models(request: Request) -> Response:
        user = _user(state, request)
        author = request.query_params.get("author")
        search = request.query_params.get("search", "").lower()
        found = [
            {"_id": r.repo_id, "id": r.repo_id, "private": r.private, "createdAt": r.created_at}
            for r in sorted(state.repos.values(), key=lambda r: r.repo_id)
            if (not r.private or user is not None)
            and (author is None or r.repo_id.split("/")[0] == author)
            and search in r.repo_id.split("/")[1].lower()
        ]
        return JSONResponse(found)

    async def validate_yaml(request: Request) -> Response:
        body = await request.json()
        content = body.get("content", "")
        errors: list[dict[str, str]] = []
        if content.startswith("---"):
            front = content.split("---", 2)[1] if content.count("---") >= 2 else ""
            try:
                meta = yaml.safe_load(front)
                if meta is not None and not isinstance(meta, dict):
                    errors.append({"message": "metadata must be a mapping"})
            except yaml.YAMLError as e:
                errors.append({"message": f"invalid YAML: {e}"})
        status = 400 if errors else 200
        return JSONResponse({"errors": errors, "warnings": []}, status_code=status)

    async def model_info(request: Request) -> Response:
        found = _read_at_revision(state, request)
        if isinstance(found, Response):
            return found
        repo, commit = found
        blobs = request.query_params.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, content in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update(size=len(content), blobId=git_blob_sha(content))
            siblings.append(sib)
        return JSONResponse(
            {
                "_id": repo.repo_id,
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "library_name": None,
                "siblings": siblings,
            }
        )

    async def refs(request: Request) -> Response:
        repo = _repo_for(state, request)
        if isinstance(repo, Response):
            return repo

        def ref(kind: str, name: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": oid}

        body: dict[str, Any] = {
            "branches": [ref("heads", n, o) for n, o in sorted(repo.branches.items())],
            "converts": [],
            "tags": [ref("tags", n, o) for n, o in sorted(repo.tags.items())],
        }
        if request.query_params.get("include_prs"):
            body["pullRequests"] = []
        return JSONResponse(body)

    async def tree(request: Request) -> Response:
        found = _read_at_revision(state, request)
        if isinstance(found, Response):
            return found
        _, commit = found
        prefix = request.path_params.get("path", "").strip("/")
        recursive = request.query_params.get("recursive", "").lower() in ("1", "true")
        files = {p: c for p, c in commit.files.items() if not prefix or p.startswith(prefix + "/")}
        if prefix and not files:
            return _error(404, f"{prefix} does not exist", "EntryNotFound")
        entries: dict[str, dict[str, Any]] = {}
        for path, content in sorted(files.items()):
            rel = path[len(prefix) + 1 :] if prefix else path
            parts = rel.split("/")
            base = f"{prefix}/" if prefix else ""
            # folders on the way down (only the first one when not recursive)
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folder = base + "/".join(parts[:depth])
                oid = hashlib.sha1(f"tree {commit.oid} {folder}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "oid": oid, "path": folder})
            if recursive or len(parts) == 1:
                entries[path] = {
                    "type": "file",
                    "oid": git_blob_sha(content),
                    "size": len(content),
                    "path": path,
                }
        return JSONResponse(list(entries.values()))

    async def preupload(request: Request) -> Response:
        repo = _repo_for(state, request, write=True)
        if isinstance(repo, Response):
            return repo
        revision = request.path_params["revision"]
        if revision not in repo.branches:
            return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        current = repo.commits[repo.branches[revision]].files
        body = await request.json()
        out = []
        for f in body.get("files", []):
            path = f["path"]
            remote = current.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": "regular",  # never "lfs": no LFS/Xet upload is attempted
                    "shouldIgnore": False,
                    "oid": git_blob_sha(remote) if remote is not None else None,
                }
            )
        return JSONResponse({"files": out, "commitOid": repo.branches[revision]})

    async def commit(request: Request) -> Response:
        repo = _repo_for(state, request, write=True)
        if isinstance(repo, Response):
            return repo
        if request.query_params.get("create_pr"):
            return _error(400, "Pull requests are not supported by this fake Hub")
        revision = request.path_params["revision"]
        raw = await request.body()
        with state.lock:
            if state.fail_commits > 0:
                state.fail_commits -= 1
                return _error(500, "Injected failure (LocalHub.fail_next_commit)")
            if revision not in repo.branches:
                return _error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.branches[revision]
            files = dict(repo.commits[head].files)
            header: dict[str, Any] = {}
            for line in raw.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    if value.get("encoding", "base64") != "base64":
                        return _error(400, f"Unsupported encoding {value.get('encoding')}")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if value["path"] not in files:
                        return _error(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(folder)}
                else:  # lfsFile, copy ... : this fake stores regular files only
                    return _error(400, f"Unsupported commit operation {key!r}")
            if not header.get("summary"):
                return _error(400, "Missing commit header / summary")
            parent = header.get("parentCommit")
            if parent is not None and parent != head:
                return _error(412, "A commit has happened since. Please refresh and try again.")
            new = state.new_commit(
                repo, head, files, header["summary"], header.get("description", "")
            )
            repo.branches[revision] = new.oid
        return JSONResponse(
            {
                "success": True,
                "commitOid": new.oid,
                "commitUrl": f"{_base(request)}/{repo.repo_id}/commit/{new.oid}",
                "pullRequestUrl": None,
            }
        )

    async def tag(request: Request) -> Response:
        repo = _repo_for(state, request, write=True)
        if isinstance(repo, Response):
            return repo
        if request.method == "DELETE":
            name = request.path_params["rev"]
            with state.lock:
                if name not in repo.tags:
                    return _error(404, f"Tag {name} not found", "RevisionNotFound")
                del repo.tags[name]
            return JSONResponse({})
        body = await request.json()
        name = body.get("tag")
        if not name:
            return _error(400, "Missing tag")
        with state.lock:
            target = _commit_for(repo, request.path_params["rev"])
            if isinstance(target, Response):
                return target
            if name in repo.tags:
                return _error(409, f"Tag {name} already exists")
            repo.tags[name] = target.oid
        return JSONResponse({})

    async def resolve(request: Request) -> Response:
        found = _read_at_revision(state, request)
        if isinstance(found, Response):
            return found
        _, commit = found
        path = request.path_params["path"]
        content = commit.files.get(path)
        if content is None:
            return _error(404, "Entry not found", "EntryNotFound", **{"X-Repo-Commit": commit.oid})
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_sha(content)}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
        }
        status = 200
        rng = request.headers.get("range", "")
        if request.method == "GET" and rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(content) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        # Content-Length is set by Response; uvicorn drops the body of a HEAD answer.
        return Response(content, status, headers=headers, media_type="application/octet-stream")

    async def faults(request: Request, call_next: RequestResponseEndpoint) -> Response:
        with state.lock:
            state.requests.append((request.method, request.url.path))
            fault = next((f for f in state.faults if f.count > 0 and f.method == request.method
                          and request.url.path.endswith(f.path_end)), None)
            if fault is not None:
                fault.count -= 1
        if fault is not None:
            return _error(fault.status, f"Injected {fault.status} (LocalHub.fail_next)",
                          **fault.headers)
        return await call_next(request)

    prefix = "/api/models/{ns}/{name}"
    app = Starlette(
        routes=[
            Route("/api/whoami-v2", whoami, methods=["GET"]),
            Route("/api/repos/create", create_repo, methods=["POST"]),
            Route("/api/repos/delete", delete_repo, methods=["DELETE"]),
            Route("/api/models", list_models, methods=["GET"]),
            Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
            Route(prefix, model_info, methods=["GET"]),
            Route(prefix + "/revision/{revision}", model_info, methods=["GET"]),
            Route(prefix + "/refs", refs, methods=["GET"]),
            Route(prefix + "/tree/{revision}", tree, methods=["GET"]),
            Route(prefix + "/tree/{revision}/{path:path}", tree, methods=["GET"]),
            Route(prefix + "/preupload/{revision}", preupload, methods=["POST"]),
            Route(prefix + "/commit/{revision}", commit, methods=["POST"]),
            Route(prefix + "/tag/{rev}", tag, methods=["POST", "DELETE"]),
            Route("/{ns}/{name}/resolve/{revision}/{path:path}", resolve, methods=["GET", "HEAD"]),
        ]
    )
    app.add_middleware(BaseHTTPMiddleware, dispatch=faults)
    return app


# --- the server ------------------------------------------------------------------------------


class LocalHub:
    """Runs the fake Hub with uvicorn in a background thread on a free 127.0.0.1 port."""

    def __init__(self, token: str = DEFAULT_TOKEN, user: str = DEFAULT_USER) -> None:
        self.token = token
        self.user = user
        self.state = HubState({token: user})
        self.app = build_app(self.state)
        self._background = BackgroundServer(self.app, name="local-hub",
                                            health_path="/api/models/_/_")
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalHub is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> LocalHub:
        self._background.start(timeout)
        self.port = self._background.port
        return self

    def stop(self) -> None:
        self._background.stop()

    def fail_next_commit(self, count: int = 1) -> None:
        """Make the next ``count`` commit requests answer HTTP 500 without applying anything."""
        with self.state.lock:
            self.state.fail_commits = count

    def fail_next(
        self, method: str, path_end: str, status: int, headers: dict[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` ``method`` requests to a path ending in ``path_end`` with
        ``status`` (and ``headers``) without handling them."""
        with self.state.lock:
            self.state.faults.append(Fault(method, path_end, status, headers or {}, count))

    def requests_to(self, method: str, path_end: str) -> int:
        """How many ``method`` requests to a path ending in ``path_end`` arrived so far."""
        with self.state.lock:
            return sum(m == method and p.endswith(path_end) for m, p in self.state.requests)

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def local_hub_fixture(scope: str = "function") -> Any:
    """A pytest fixture yielding a started ``LocalHub`` that ``huggingface_hub`` may reach:
    ``local_hub = local_hub_fixture("module")``.

    tests/conftest.py sets ``HF_HUB_OFFLINE=1`` for the session, which ``huggingface_hub`` reads
    at import into a constant; the fixture lifts it (and keeps the client off Xet, which the
    fake does not offer) for as long as the hub runs.
    """

    @pytest.fixture(scope=scope)  # type: ignore[call-overload]
    def _local_hub() -> Iterator[LocalHub]:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(constants, "HF_HUB_OFFLINE", False)
            mp.setattr(constants, "HF_HUB_DISABLE_XET", True)
            with LocalHub() as hub:
                yield hub

    return _local_hub

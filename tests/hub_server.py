"""A loopback Hugging Face Hub for the test suite: the subset of the Hub HTTP API that the installed
``huggingface_hub`` (2.x, with ``HF_HUB_DISABLE_XET=1``), ``datasets`` and ``evaluate`` call, served from
memory on 127.0.0.1 only.

What it keeps: repos (model, dataset, space) as a commit history (each commit a full ``path -> blob``
snapshot, so every past revision stays readable), branches and tags, and git-LFS objects. What it checks:
tokens (401 without one for writes, 401 for an unknown one everywhere), namespaces (403 for writing outside
the token's user and organisations), ``parentCommit`` (412 when the branch moved), tag and repo uniqueness
(409), LFS object hashes and sizes. Errors carry ``X-Error-Code`` / ``X-Error-Message`` as the Hub's do, so
``huggingface_hub.utils.hf_raise_for_status`` raises the same exception classes it raises against the Hub.

Simplifications, each one a thing no client here depends on: no pull requests, no Xet, no gating, LFS objects
are uploaded with the "basic" transfer (one PUT) to this same server, and every file whose name has an LFS
extension (as in the Hub's default ``.gitattributes``) is stored in LFS, whatever its size.

Use :class:`HubServer`: ``server = HubServer(); server.start(); ...; server.stop()``; ``server.endpoint`` is
the value for ``HF_ENDPOINT``; ``server.add_user(name, token, orgs)`` registers a token; ``server.hold(...)``
keeps the next matching request waiting until the test lets it through (a deterministic interleaving of two
clients: one of them stopped between two of its requests while the other runs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = ["HubServer"]

#: File name endings stored in LFS (a subset of the Hub's default .gitattributes).
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".gz", ".zip", ".png", ".jpg",
                ".jpeg", ".npy", ".npz", ".tar", ".h5", ".msgpack", ".onnx", ".pkl")
GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES).encode()
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


class HubError(Exception):
    """An HTTP error answer: status, message and the ``X-Error-Code`` the client dispatches on."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 body: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.headers = headers or {}
        self.body = body


@dataclass(frozen=True)
class Blob:
    """One file's content. ``lfs`` files keep their bytes in the server's LFS store under ``sha256``."""

    size: int
    sha256: str
    git_oid: str  # git blob id: of the content (regular) or of the LFS pointer (lfs)
    lfs: bool
    content: bytes | None = None  # regular files only
    pointer_size: int = 0


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    author: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _regular_blob(data: bytes) -> Blob:
    return Blob(size=len(data), sha256=hashlib.sha256(data).hexdigest(), git_oid=_git_oid(data), lfs=False, content=data)


def _lfs_blob(sha256: str, size: int) -> Blob:
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    return Blob(size=size, sha256=sha256, git_oid=_git_oid(pointer), lfs=True, pointer_size=len(pointer))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@dataclass
class Hold:
    """One request that the server keeps waiting, before it looks at it, until the test sets ``release``:
    the first request whose method is ``method``, whose path matches ``path`` (a regular expression, whole
    path) and whose body contains ``body``. ``reached`` is set when it arrives."""

    method: str
    path: re.Pattern
    body: bytes = b""
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return method == self.method and self.path.fullmatch(path) is not None and self.body in body


#: The longest a held request waits for its release (s): a test that forgets one fails instead of hanging.
HOLD_TIMEOUT = 120.0


class HubState:
    """Users, repos and LFS objects, behind one lock; every method is one client-visible operation."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, tuple[str, tuple[str, ...]]] = {}  # token -> (user, orgs)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> bytes
        self.uploads: dict[str, tuple[str, int]] = {}  # upload ticket -> (sha256, size)
        self.counter = 0
        self.page_size = 50
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests to inspect
        self.connections = 0  # TCP connections accepted: a client that drops its keep-alive ones opens more
        self.holds: list[Hold] = []  # requests to keep waiting, see HubServer.hold
        self.endpoint = ""  # set by HubServer: the base of the URLs in answers

    # -- identity -------------------------------------------------------------------------------------------
    def identify(self, authorization: str | None) -> tuple[str, tuple[str, ...]] | None:
        """The (user, orgs) of a ``Bearer`` token; ``None`` without one; 401 for an unknown one."""
        if not authorization:
            return None
        token = authorization.removeprefix("Bearer ").strip()
        if token not in self.users:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.users[token]

    def check_write(self, who, namespace: str, what: str) -> str:
        if who is None:
            raise HubError(401, f"You must be authenticated to {what}")
        user, orgs = who
        if namespace != user and namespace not in orgs:
            raise HubError(403, f"You don't have the rights to {what} under the namespace {namespace!r}")
        return user

    # -- repos ----------------------------------------------------------------------------------------------
    def repo(self, repo_type: str, repo_id: str, who) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and (who is None or repo_id.split("/")[0] not in (who[0], *who[1]))):
            raise HubError(404, f"Repository not found: {URL_PREFIX[repo_type]}{repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool, sdk: str | None, who) -> Repo:
        user = self.check_write(who, repo_id.split("/")[0], f"create a {repo_type}")
        if (repo_type, repo_id) in self.repos:
            raise HubError(409, f"You already created this {repo_type} repo", body={
                "error": f"You already created this {repo_type} repo", "url": self.url(repo_type, repo_id)})
        repo = Repo(repo_type, repo_id, private, sdk)
        initial = self.new_commit(None, "initial commit", "", user, {".gitattributes": _regular_blob(GITATTRIBUTES)})
        repo.commits[initial.oid] = initial
        repo.branches["main"] = initial.oid
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def new_commit(self, parent: Commit | None, title: str, message: str, author: str, files: dict) -> Commit:
        self.counter += 1
        oid = hashlib.sha1(f"{self.counter}\0{parent.oid if parent else ''}\0{title}".encode()).hexdigest()
        return Commit(oid, parent.oid if parent else None, title, message, author, _now(), files)

    @staticmethod
    def resolve(repo: Repo, revision: str) -> Commit:
        """A branch, a tag, ``refs/heads/X``, ``refs/tags/X`` or a full commit id -> the commit."""
        revision = unquote(revision)
        for prefix, refs in (("refs/heads/", repo.branches), ("refs/tags/", repo.tags)):
            if revision.startswith(prefix) and revision[len(prefix):] in refs:
                return repo.commits[refs[revision[len(prefix):]]]
        oid = repo.branches.get(revision) or repo.tags.get(revision) or (revision if revision in repo.commits else None)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"

    def take_hold(self, method: str, path: str, body: bytes) -> Hold | None:
        """The first hold this request matches, removed (each hold stops one request), or ``None``."""
        with self.lock:
            for hold in self.holds:
                if hold.matches(method, path, body):
                    self.holds.remove(hold)
                    return hold
        return None


# -- helpers shared by the routes ---------------------------------------------------------------------------------

def _entry(commit_files: dict[str, Blob], path: str, repo: Repo | None = None, head: Commit | None = None,
           expand: bool = False) -> dict:
    """The tree / paths-info JSON of a file or folder, as ``RepoFile(**entry)`` / ``RepoFolder(**entry)`` read it."""
    blob = commit_files.get(path)
    if blob is not None:
        entry = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
    else:
        inside = sorted(f"{p}:{b.git_oid}" for p, b in commit_files.items() if p.startswith(path + "/"))
        entry = {"type": "directory", "oid": hashlib.sha1("\n".join(inside).encode()).hexdigest(), "size": 0, "path": path}
    if expand and repo is not None and head is not None:
        last = _last_commit(repo, head, path)
        entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
    return entry


def _last_commit(repo: Repo, head: Commit, path: str) -> Commit:
    """The newest commit in ``head``'s history that changed ``path`` (a file, or anything under a folder)."""
    def state(commit: Commit):
        return sorted((p, b.git_oid) for p, b in commit.files.items() if p == path or p.startswith(path + "/"))

    commit = head
    while commit.parent is not None and state(repo.commits[commit.parent]) == state(commit):
        commit = repo.commits[commit.parent]
    return commit


def _folders(files: dict[str, Blob]) -> set[str]:
    return {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}


def _read_ndjson(body: bytes) -> list[dict]:
    try:
        return [json.loads(line) for line in body.splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise HubError(400, f"commit payload is not NDJSON: {err}") from None


# -- the request handler and its route table ----------------------------------------------------------------------

REPO = r"/api/(?P<kind>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
GIT = r"/(?:(?P<kind>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+?)\.git/info/lfs/objects"
RESOLVE = r"/(?:(?P<kind>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"


class Handler(BaseHTTPRequestHandler):
    """Dispatches on :data:`ROUTES`; each handler returns ``(status, headers, body)`` or raises :class:`HubError`."""

    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # noqa: A002 - quiet: pytest shows failures, not access logs
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    # ---- plumbing
    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError:
            raise HubError(400, "request body is not JSON") from None

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        with state.lock:
            state.requests.append((method, split.path))
        hold = state.take_hold(method, split.path, self.body)
        if hold is not None:  # outside the lock: every other client is served meanwhile
            hold.reached.set()
            hold.release.wait(HOLD_TIMEOUT)
        try:
            for route_method, pattern, handler in ROUTES:
                match = pattern.fullmatch(split.path)
                if match and route_method == method:
                    with state.lock:
                        self.who = state.identify(self.headers.get("Authorization"))
                        self.params = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
                        status, headers, body = handler(self, state)
                    break
            else:
                raise HubError(404, f"no route for {method} {split.path} in the test Hub")
        except Exception as err:  # noqa: BLE001 - a malformed request or a server bug: answer, never hang up
            if not isinstance(err, HubError):
                err = HubError(500, f"test Hub failed on {method} {split.path}: {type(err).__name__}: {err}")
            payload = err.body or {"error": err.message}
            status, body = err.status, json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", "X-Error-Message": err.message, **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, str(value))
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ---- shared pieces
    def _repo(self, state: HubState) -> Repo:
        kind = self.params.get("kind") or "models"
        return state.repo(REPO_TYPES[kind], f"{self.params['ns']}/{self.params['name']}", self.who)

    def _write_repo(self, state: HubState, what: str) -> tuple[Repo, str]:
        repo = self._repo(state)
        return repo, state.check_write(self.who, repo.repo_id.split("/")[0], what)

    @staticmethod
    def _ok(payload, status: int = 200, headers: dict | None = None):
        return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()

    # ---- routes
    def whoami(self, state: HubState):
        """``HfApi.whoami``: GET /api/whoami-v2."""
        if self.who is None:
            raise HubError(401, "Invalid username or password.")
        user, orgs = self.who
        return self._ok({"type": "user", "id": user, "name": user, "fullname": user, "avatarUrl": "",
                         "orgs": [{"type": "org", "name": org, "roleInOrg": "write"} for org in orgs],
                         "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "write"}}})

    def validate_yaml(self, state: HubState):
        """``HfApi.create_commit`` with a README.md: POST /api/validate-yaml (no checks here)."""
        return self._ok({"errors": [], "warnings": []})

    def create_repo(self, state: HubState):
        """``HfApi.create_repo``: POST /api/repos/create {name, organization, type, visibility|private, sdk}."""
        payload = self._json()
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or (self.who[0] if self.who else "")
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = state.create_repo(repo_type, f"{namespace}/{payload['name']}", private, payload.get("sdk"), self.who)
        return self._ok({"url": state.url(repo_type, repo.repo_id), "name": repo.repo_id})

    def delete_repo(self, state: HubState):
        """``HfApi.delete_repo``: DELETE /api/repos/delete {name, organization, type}."""
        payload = self._json()
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or (self.who[0] if self.who else "")
        repo = state.repo(repo_type, f"{namespace}/{payload['name']}", self.who)
        state.check_write(self.who, namespace, f"delete a {repo_type}")
        del state.repos[(repo_type, repo.repo_id)]
        return self._ok({})

    def repo_info(self, state: HubState):
        """``HfApi.repo_info`` / ``dataset_info`` / ``space_info`` (and ``HfFileSystem.resolve_path``):
        GET /api/{type}s/{id} and /api/{type}s/{id}/revision/{rev}."""
        repo = self._repo(state)
        commit = state.resolve(repo, self.params.get("rev") or "main")
        blobs = self.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.git_oid)
                if blob.lfs:
                    sibling["lfs"] = {"size": blob.size, "sha256": blob.sha256, "pointerSize": blob.pointer_size}
            siblings.append(sibling)
        info = {"_id": repo.repo_id, "id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.oid,
                "lastModified": commit.date, "createdAt": next(c.date for c in repo.commits.values() if c.parent is None),
                "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "siblings": siblings}
        if repo.repo_type == "space":
            info.update(sdk=repo.sdk, runtime={"stage": "NO_APP_FILE", "hardware": {"current": None, "requested": None}})
        return self._ok(info)

    def refs(self, state: HubState):
        """``HfApi.list_repo_refs``: GET /api/{type}s/{id}/refs."""
        repo = self._repo(state)
        listing = {kind: [{"name": n, "ref": f"refs/{prefix}/{n}", "targetCommit": oid} for n, oid in sorted(refs.items())]
                   for kind, prefix, refs in (("branches", "heads", repo.branches), ("tags", "tags", repo.tags))}
        return self._ok({**listing, "converts": [], "pullRequests": []})

    def tree(self, state: HubState):
        """``HfApi.list_repo_tree`` / ``list_repo_files`` / ``HfFileSystem.ls|find|glob``: GET
        /api/{type}s/{id}/tree/{rev}[/{path}]?recursive=&expand=&cursor=, paginated with a ``Link: rel="next"``
        header (page size :attr:`HubState.page_size`), as the Hub pages its listings."""
        repo = self._repo(state)
        commit = state.resolve(repo, self.params["rev"])
        base = (self.params.get("path") or "").strip("/")
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        expand = self.query.get("expand", "").lower() in ("1", "true")
        folders = _folders(commit.files)
        if base and base not in folders:
            raise HubError(404, f"{base} does not exist on {self.params['rev']}", "EntryNotFound",
                           {"X-Repo-Commit": commit.oid})
        prefix = base + "/" if base else ""
        paths = [p for p in sorted(set(commit.files) | folders) if p.startswith(prefix)
                 and (recursive or "/" not in p[len(prefix):])]
        start = int(self.query.get("cursor") or 0)
        page = paths[start:start + state.page_size]
        headers = {}
        if start + state.page_size < len(paths):
            split = urlsplit(self.path)
            query = {k: v for k, v in self.query.items() if k != "cursor"} | {"cursor": str(start + state.page_size)}
            next_url = f"{state.endpoint}{split.path}?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())
            headers["Link"] = f'<{next_url}>; rel="next"'
        return self._ok([_entry(commit.files, p, repo, commit, expand) for p in page], headers=headers)

    def paths_info(self, state: HubState):
        """``HfApi.get_paths_info`` / ``HfFileSystem.info``: POST /api/{type}s/{id}/paths-info/{rev}, form data
        ``paths`` (repeated) and ``expand``; paths that do not exist are left out."""
        repo = self._repo(state)
        commit = state.resolve(repo, self.params["rev"])
        form = parse_qs(self.body.decode())
        expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        folders = _folders(commit.files)
        paths = [p.strip("/") for p in form.get("paths", [])]
        return self._ok([_entry(commit.files, p, repo, commit, expand) for p in paths
                         if p in commit.files or p in folders])

    def commits(self, state: HubState):
        """``HfApi.list_repo_commits``: GET /api/{type}s/{id}/commits/{rev} (newest first, one page)."""
        repo = self._repo(state)
        commit, out = state.resolve(repo, self.params["rev"]), []
        while commit is not None:
            out.append({"id": commit.oid, "title": commit.title, "message": commit.message, "date": commit.date,
                        "authors": [{"user": commit.author}]})
            commit = repo.commits[commit.parent] if commit.parent else None
        return self._ok(out)

    def preupload(self, state: HubState):
        """``HfApi.preupload_lfs_files`` (inside ``create_commit``): POST /api/{type}s/{id}/preupload/{rev}
        {files: [{path, sample, size}]} -> upload mode per file and the current oid of that path (sha256 for LFS
        files, git blob id for regular ones: what the client compares to skip unchanged files)."""
        repo, _ = self._write_repo(state, "upload files")
        commit = state.resolve(repo, self.params["rev"])
        files = []
        for item in self._json().get("files", []):
            lfs = item["path"].lower().endswith(LFS_SUFFIXES) and item.get("size", 0) > 0
            current = commit.files.get(item["path"])
            oid = None if current is None or current.lfs != lfs else (current.sha256 if lfs else current.git_oid)
            files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return self._ok({"files": files, "commitOid": commit.oid})

    def commit(self, state: HubState):
        """``HfApi.create_commit`` / ``upload_folder`` / ``upload_file`` / ``delete_file``: POST
        /api/{type}s/{id}/commit/{branch}, NDJSON: a ``header`` ({summary, description, parentCommit?}) then
        ``file`` (base64), ``lfsFile`` (an uploaded LFS object), ``deletedFile`` and ``deletedFolder`` lines.
        412 when ``parentCommit`` is not the branch head; 404 for a branch that does not exist."""
        repo, user = self._write_repo(state, "commit")
        branch = self.params["rev"]
        if self.query.get("create_pr"):
            raise HubError(400, "pull requests are not supported by the test Hub")
        if branch not in repo.branches:
            if branch in repo.tags or branch in repo.commits:
                raise HubError(400, f"{branch!r} is not a branch: commits go to branches")
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        lines = _read_ndjson(self.body)
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first NDJSON line must be the commit header")
        header = lines[0]["value"]
        head = repo.commits[repo.branches[branch]]
        parent = header.get("parentCommit")
        if parent is not None and parent != head.oid:
            raise HubError(412, f"A commit has happened since. Please refresh and try again. (parent {parent[:12]} "
                                f"is not the head {head.oid[:12]} of {branch})")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = value.get("path", "")
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise HubError(400, f"invalid path {path!r}")
            if key == "file":
                files[path] = _regular_blob(base64.b64decode(value["content"]))
            elif key == "lfsFile":
                if value.get("oid") not in state.lfs:
                    raise HubError(422, f"LFS object {value.get('oid')} of {path} was never uploaded")
                files[path] = _lfs_blob(value["oid"], len(state.lfs[value["oid"]]))
            elif key == "deletedFile":
                if path not in files:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                del files[path]
            elif key == "deletedFolder":
                files = {p: b for p, b in files.items() if not p.startswith(path.rstrip("/") + "/")}
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        commit = state.new_commit(head, header.get("summary") or "", header.get("description") or "", user, files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return self._ok({"success": True, "commitOid": commit.oid, "pullRequestUrl": None, "hookOutput": "",
                         "commitUrl": f"{state.url(repo.repo_type, repo.repo_id)}/commit/{commit.oid}"})

    def create_tag(self, state: HubState):
        """``HfApi.create_tag``: POST /api/{type}s/{id}/tag/{revision} {tag, message}; 409 if the tag exists."""
        repo, _ = self._write_repo(state, "create a tag")
        commit = state.resolve(repo, self.params["rev"])
        tag = self._json().get("tag", "")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = commit.oid
        return self._ok({"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": commit.oid})

    def delete_tag(self, state: HubState):
        """``HfApi.delete_tag``: DELETE /api/{type}s/{id}/tag/{tag}."""
        repo, _ = self._write_repo(state, "delete a tag")
        if repo.tags.pop(self.params["rev"], None) is None:
            raise HubError(404, f"Invalid rev id: {self.params['rev']}", "RevisionNotFound")
        return self._ok({})

    def create_branch(self, state: HubState):
        """``HfApi.create_branch``: POST /api/{type}s/{id}/branch/{branch} {startingPoint?}; 409 if it exists."""
        repo, _ = self._write_repo(state, "create a branch")
        branch = self.params["rev"]
        if branch in repo.branches:
            raise HubError(409, f"Branch {branch} already exists")
        repo.branches[branch] = state.resolve(repo, self._json().get("startingPoint") or "main").oid
        return self._ok({})

    def delete_branch(self, state: HubState):
        """``HfApi.delete_branch``: DELETE /api/{type}s/{id}/branch/{branch}."""
        repo, _ = self._write_repo(state, "delete a branch")
        if self.params["rev"] == "main" or repo.branches.pop(self.params["rev"], None) is None:
            raise HubError(404 if self.params["rev"] != "main" else 403, f"cannot delete branch {self.params['rev']}")
        return self._ok({})

    def lfs_batch(self, state: HubState):
        """git-LFS batch API (``huggingface_hub.lfs.post_lfs_batch_info``): POST
        /{prefix}{id}.git/info/lfs/objects/batch {operation: upload, objects: [{oid, size}]} -> a "basic" upload
        action (a PUT to this server) for each object not stored yet, plus a verify action."""
        repo, _ = self._write_repo(state, "upload LFS files")
        payload = self._json()
        if payload.get("operation") != "upload":
            raise HubError(400, "only LFS uploads are supported by the test Hub (downloads go through /resolve)")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if oid not in state.lfs:
                ticket = hashlib.sha1(f"{oid}{size}{time.monotonic_ns()}".encode()).hexdigest()
                state.uploads[ticket] = (oid, size)
                base = f"{state.endpoint}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}.git/info/lfs/objects"
                entry["actions"] = {"upload": {"href": f"{state.endpoint}/__lfs/{ticket}", "header": {}},
                                    "verify": {"href": f"{base}/verify", "header": {}}}
            objects.append(entry)
        return 200, {"Content-Type": "application/vnd.git-lfs+json"}, json.dumps(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()

    def lfs_verify(self, state: HubState):
        """git-LFS verify action: POST /{prefix}{id}.git/info/lfs/objects/verify {oid, size}."""
        self._write_repo(state, "upload LFS files")
        payload = self._json()
        data = state.lfs.get(payload.get("oid", ""))
        if data is None or len(data) != payload.get("size"):
            raise HubError(404, f"LFS object {payload.get('oid')} is not stored")
        return self._ok({})

    def lfs_put(self, state: HubState):
        """The "basic" transfer's upload: PUT /__lfs/{ticket} with the object's bytes (checked: sha256, size)."""
        ticket = state.uploads.pop(self.params["ticket"], None)
        if ticket is None:
            raise HubError(403, "unknown or used LFS upload ticket")
        oid, size = ticket
        if len(self.body) != size or hashlib.sha256(self.body).hexdigest() != oid:
            raise HubError(400, f"LFS object does not match its oid {oid[:12]} / size {size}")
        state.lfs[oid] = self.body
        return 200, {}, b""

    def resolve(self, state: HubState):
        """``hf_hub_download`` (HEAD for metadata, then GET), ``HfFileSystem.open`` (GET with ``Range``),
        ``evaluate`` and ``datasets`` downloads: HEAD|GET /{prefix}{id}/resolve/{rev}/{path}. Answers with
        ``X-Repo-Commit``, ``ETag`` (git blob id, or sha256 for LFS files, which also get ``X-Linked-Etag`` and
        ``X-Linked-Size``), ``Content-Length``, ``Accept-Ranges``; ``Range: bytes=a-b`` gives 206 or 416."""
        repo = self._repo(state)
        commit = state.resolve(repo, self.params["rev"])
        blob = commit.files.get(self.params["path"])
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        data = state.lfs[blob.sha256] if blob.lfs else blob.content
        etag = f'"{blob.sha256 if blob.lfs else blob.git_oid}"'
        headers = {"X-Repo-Commit": commit.oid, "ETag": etag, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": blob.size})
        status = 200
        wanted = self.headers.get("Range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            if not match or not any(match.groups()):
                raise HubError(416, f"bad range {wanted}", headers={"Content-Range": f"bytes */{len(data)}"})
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
            else:
                start, end = max(len(data) - int(last), 0), len(data) - 1
            if start >= len(data) or start > end:
                raise HubError(416, f"range {wanted} outside {len(data)} bytes",
                               headers={"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        headers["Content-Length"] = len(data)
        return status, headers, data


ROUTES: list[tuple[str, re.Pattern, Callable]] = [
    (method, re.compile(pattern), handler) for method, pattern, handler in (
        ("GET", r"/api/whoami-v2", Handler.whoami),
        ("POST", r"/api/validate-yaml", Handler.validate_yaml),
        ("POST", r"/api/repos/create", Handler.create_repo),
        ("DELETE", r"/api/repos/delete", Handler.delete_repo),
        ("GET", REPO, Handler.repo_info),
        ("GET", REPO + r"/revision/(?P<rev>[^/]+)", Handler.repo_info),
        ("GET", REPO + r"/refs", Handler.refs),
        ("GET", REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", Handler.tree),
        ("POST", REPO + r"/paths-info/(?P<rev>[^/]+)", Handler.paths_info),
        ("GET", REPO + r"/commits/(?P<rev>[^/]+)", Handler.commits),
        ("POST", REPO + r"/preupload/(?P<rev>[^/]+)", Handler.preupload),
        ("POST", REPO + r"/commit/(?P<rev>[^/]+)", Handler.commit),
        ("POST", REPO + r"/tag/(?P<rev>[^/]+)", Handler.create_tag),
        ("DELETE", REPO + r"/tag/(?P<rev>[^/]+)", Handler.delete_tag),
        ("POST", REPO + r"/branch/(?P<rev>[^/]+)", Handler.create_branch),
        ("DELETE", REPO + r"/branch/(?P<rev>[^/]+)", Handler.delete_branch),
        ("POST", GIT + r"/batch", Handler.lfs_batch),
        ("POST", GIT + r"/verify", Handler.lfs_verify),
        ("PUT", r"/__lfs/(?P<ticket>[0-9a-f]+)", Handler.lfs_put),
        ("HEAD", RESOLVE, Handler.resolve),
        ("GET", RESOLVE, Handler.resolve),
    )
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: HubState


class HubServer:
    """The loopback Hub: binds 127.0.0.1 on a free port at construction (so ``endpoint`` is known before
    ``huggingface_hub`` is imported), serves from :meth:`start` on, in a daemon thread."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), Handler)
        self.state = HubState()
        self._server.state = self.state
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.state.endpoint = self.endpoint
        self._thread: threading.Thread | None = None

    def start(self) -> "HubServer":
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def add_user(self, name: str, token: str, orgs: tuple[str, ...] = ()) -> str:
        """Register ``token`` for user ``name``, member (with write rights) of ``orgs``; returns the token."""
        with self.state.lock:
            self.state.users[token] = (name, tuple(orgs))
        return token

    def hold(self, method: str, path: str, body: bytes = b"") -> Hold:
        """Keep the next ``method`` request whose path matches ``path`` (a regular expression) and whose body
        contains ``body`` waiting, before the server reads any state for it, until ``release`` is set (or
        :data:`HOLD_TIMEOUT` passes); ``reached`` is set when it arrives."""
        hold = Hold(method, re.compile(path), body)
        with self.state.lock:
            self.state.holds.append(hold)
        return hold

    def reset(self) -> None:
        """Forget every repo, LFS object, logged request and unused hold (users stay)."""
        with self.state.lock:
            self.state.holds.clear()
            self.state.repos.clear()
            self.state.lfs.clear()
            self.state.uploads.clear()
            self.state.requests.clear()
            self.state.connections = 0

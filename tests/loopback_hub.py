"""A Hugging Face Hub on 127.0.0.1 that serves local folders as Hub repositories, offline.

Implements exactly the HTTP protocol huggingface_hub 2.4 (and through it transformers 5, diffusers 0.42,
open_clip 3.3) uses to read public and gated repos:

    HEAD/GET /{repo_id}/resolve/{revision}/{path}             (datasets/ and spaces/ prefixed for those types)
    GET      /api/{models|datasets|spaces}/{repo_id}[/revision/{revision}]
    GET      /api/{type}s/{repo_id}/tree/{revision}[/{path}]?recursive=&expand=
    POST     /api/{type}s/{repo_id}/paths-info/{revision}

with the headers the client reads (X-Repo-Commit, ETag, X-Linked-Etag, X-Linked-Size, Content-Length,
Range/206) and the error codes it maps to exceptions (X-Error-Code: RepoNotFound, RevisionNotFound,
EntryNotFound, GatedRepo). Large binary files are presented as LFS files (sha256 etag), the rest as git
blobs (git blob sha1), as the Hub does. Standard library only.

    python loopback_hub.py --port 18091 model:HuggingFaceTB/SmolLM2-135M-Instruct=/path/to/folder ...
    (append @gated:TOKEN to a spec to require `Authorization: Bearer TOKEN`)

In a test:  hub = LoopbackHub({"HuggingFaceTB/SmolLM2-135M-Instruct": folder}); hub.start(); ... hub.stop()
and set HF_ENDPOINT=hub.url *before* huggingface_hub is imported (it reads the endpoint once, at import).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".onnx", ".msgpack", ".h5", ".model")
LFS_MIN_SIZE = 10 * 1024 * 1024
CHUNK = 1024 * 1024
TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


@dataclass
class RepoFile:
    path: str
    disk: Path
    size: int
    _etag: str | None = None

    @property
    def lfs(self) -> bool:
        return self.size >= LFS_MIN_SIZE or self.path.endswith(LFS_SUFFIXES)

    @property
    def etag(self) -> str:
        """sha256 of the content for LFS files, git blob sha1 otherwise: what the Hub sends."""
        if self._etag is None:
            digest = hashlib.sha256() if self.lfs else hashlib.sha1(f"blob {self.size}\0".encode())
            with open(self.disk, "rb") as handle:
                for chunk in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(chunk)
            self._etag = digest.hexdigest()
        return self._etag

    @property
    def blob_id(self) -> str:  # the git object id of the file (for LFS: of its pointer file)
        if not self.lfs:
            return self.etag
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.etag}\nsize {self.size}\n".encode()
        return hashlib.sha1(f"blob {len(pointer)}\0".encode() + pointer).hexdigest()

    def entry(self) -> dict:
        item = {"type": "file", "oid": self.blob_id, "size": self.size, "path": self.path}
        if self.lfs:
            item["lfs"] = {"oid": self.etag, "size": self.size, "pointerSize": 134}
        return item


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    folder: Path
    token: str | None = None  # set: a gated repo that needs this token
    files: dict[str, RepoFile] = field(default_factory=dict)
    sha: str = ""

    def __post_init__(self) -> None:
        for disk in sorted(p for p in self.folder.rglob("*") if p.is_file() and ".git" not in p.parts):
            rel = disk.relative_to(self.folder).as_posix()
            self.files[rel] = RepoFile(rel, disk, disk.stat().st_size)
        # A stable "commit": changes when a file's name, size or mtime changes (no content hashing at start).
        listing = "\n".join(f"{f.path} {f.size} {f.disk.stat().st_mtime_ns}" for f in self.files.values())
        self.sha = hashlib.sha1(f"{self.repo_type}/{self.repo_id}\n{listing}".encode()).hexdigest()

    def folders(self) -> set[str]:
        dirs = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            dirs |= {"/".join(parts[: i + 1]) for i in range(len(parts))}
        return dirs

    def info(self, with_files: bool) -> dict:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(max(f.disk.stat().st_mtime for f in self.files.values())))
        siblings = [({"rfilename": f.path, "size": f.size, "blobId": f.blob_id} | ({"lfs": {"sha256": f.etag, "size": f.size, "pointerSize": 134}} if f.lfs else {}))
                    if with_files else {"rfilename": f.path} for f in self.files.values()]
        author = self.repo_id.split("/")[0] if "/" in self.repo_id else None
        return {"_id": self.sha[:24], "id": self.repo_id, "modelId": self.repo_id, "author": author, "sha": self.sha,
                "lastModified": stamp, "createdAt": stamp, "private": False, "gated": "manual" if self.token else False,
                "disabled": False, "downloads": 0, "likes": 0, "tags": [], "siblings": siblings}


class LoopbackHub:
    def __init__(self, repos: dict[str, str | Path | tuple], host: str = "127.0.0.1", port: int = 0):
        """repos: {repo_id: folder} or {repo_id: (folder, repo_type, gated_token)}; repo_type default "model"."""
        self.repos: dict[tuple[str, str], Repo] = {}
        for repo_id, spec in repos.items():
            folder, repo_type, token = (spec, "model", None) if isinstance(spec, (str, Path)) else (tuple(spec) + (None, None))[:3]
            self.repos[(repo_type or "model", repo_id)] = Repo(repo_id, repo_type or "model", Path(folder), token)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LoopbackHub":
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "LoopbackHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- routing ---------------------------------------------------------------------------------------------
    def _find(self, repo_type: str, rest: str) -> tuple[Repo | None, str]:
        """The registered repo whose id starts `rest` (ids have one or two segments), and what follows it."""
        parts = rest.split("/")
        for n in (2, 1):
            repo = self.repos.get((repo_type, "/".join(parts[:n])))
            if repo is not None:
                return repo, "/".join(parts[n:])
        guess = "/".join(parts[:2])
        return None, guess

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                self._route(head=True)

            def do_GET(self) -> None:
                self._route(head=False)

            def do_POST(self) -> None:
                self._route(head=False, post=True)

            # -- responses ---------------------------------------------------------------------------------
            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Date", formatdate(usegmt=True))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, payload, head: bool = False, headers: dict | None = None) -> None:
                self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"} | (headers or {}), head)

            def _error(self, status: int, code: str, message: str, head: bool, commit: str | None = None) -> None:
                headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
                if commit:
                    headers["X-Repo-Commit"] = commit
                self._send(status, json.dumps({"error": message}).encode(), headers, head)

            def _authorised(self, repo: Repo, head: bool) -> bool:
                if repo.token is None:
                    return True
                given = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                if given == repo.token:
                    return True
                status = 403 if given else 401
                self._error(status, "GatedRepo", f"Access to model {repo.repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in.", head)
                return False

            def _revision(self, repo: Repo, revision: str, head: bool) -> bool:
                if unquote(revision) in ("main", repo.sha):
                    return True
                self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}", head)
                return False

            # -- routes ------------------------------------------------------------------------------------
            def _route(self, head: bool, post: bool = False) -> None:
                split = urlsplit(self.path)
                path, query = split.path, parse_qs(split.query)
                hub.requests.append((self.command, self.path))
                if post:  # drain the body (paths-info sends form data)
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                    fields = parse_qs(body.decode()) if b"=" in body else {}
                    if not fields and body[:1] == b"{":
                        fields = json.loads(body)
                    query = query | fields
                if path.startswith("/api/"):
                    return self._api(path[len("/api/"):], query, head)
                repo_type = "model"
                for prefix, kind in (("/datasets/", "dataset"), ("/spaces/", "space")):
                    if path.startswith(prefix):
                        repo_type, path = kind, "/" + path[len(prefix):]
                match = re.fullmatch(r"/(.+?)/resolve/([^/]+)/(.+)", path)
                if not match:
                    return self._error(404, "EntryNotFound", "Not found", head)
                repo, rest = hub._find(repo_type, match.group(1) + "/resolve/x")
                if repo is None or rest != "resolve/x":
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                if not self._authorised(repo, head) or not self._revision(repo, match.group(2), head):
                    return
                file = repo.files.get(unquote(match.group(3)))
                if file is None:
                    return self._error(404, "EntryNotFound", "Entry not found", head, commit=repo.sha)
                self._file(repo, file, head)

            def _file(self, repo: Repo, file: RepoFile, head: bool) -> None:
                headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{file.etag}"', "Accept-Ranges": "bytes",
                           "Content-Type": "application/octet-stream"}
                if file.lfs:
                    headers |= {"X-Linked-Etag": f'"{file.etag}"', "X-Linked-Size": str(file.size)}
                start, status = 0, 200
                wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if wanted and not head:
                    start = int(wanted.group(1))
                    end = int(wanted.group(2)) if wanted.group(2) else file.size - 1
                    if start >= file.size:
                        return self._send(416, b"", {"Content-Range": f"bytes */{file.size}"})
                    status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{file.size}"
                    length = end - start + 1
                else:
                    length = file.size
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if head:
                    return
                with open(file.disk, "rb") as handle:
                    handle.seek(start)
                    left = length
                    while left > 0:
                        chunk = handle.read(min(CHUNK, left))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        left -= len(chunk)

            def _api(self, rest: str, query: dict, head: bool) -> None:
                kind, _, rest = rest.partition("/")
                if kind not in TYPES:
                    return self._error(404, "EntryNotFound", f"Unknown API route {kind}", head)
                repo, tail = hub._find(TYPES[kind], rest)
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                if not self._authorised(repo, head):
                    return
                with_files = (query.get("blobs") or ["false"])[0].lower() == "true"
                if tail == "":
                    return self._json(repo.info(with_files), head)
                verb, _, tail = tail.partition("/")
                revision, _, sub = tail.partition("/")
                if verb == "revision":
                    return self._revision(repo, revision, head) and self._json(repo.info(with_files), head)
                if verb == "tree":
                    if not self._revision(repo, revision, head):
                        return
                    return self._tree(repo, unquote(sub).strip("/"), query, head)
                if verb == "paths-info":
                    if not self._revision(repo, revision, head):
                        return
                    wanted = [unquote(p).strip("/") for p in query.get("paths", [])]
                    dirs = repo.folders()
                    found = [repo.files[p].entry() if p in repo.files else {"type": "directory", "oid": hashlib.sha1(p.encode()).hexdigest(), "path": p}
                             for p in wanted if p in repo.files or p in dirs]
                    return self._json(found, head)
                return self._error(404, "EntryNotFound", f"Unknown API route {verb}", head)

            def _tree(self, repo: Repo, sub: str, query: dict, head: bool) -> None:
                recursive = (query.get("recursive") or ["false"])[0].lower() == "true"
                dirs = repo.folders()
                if sub and sub not in dirs:
                    return self._error(404, "EntryNotFound", f"{sub} does not exist on \"main\"", head, commit=repo.sha)
                prefix = f"{sub}/" if sub else ""
                entries = []
                for d in sorted(dirs):
                    if d.startswith(prefix) and (recursive or "/" not in d[len(prefix):]):
                        entries.append({"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d})
                for f in repo.files.values():
                    if f.path.startswith(prefix) and (recursive or "/" not in f.path[len(prefix):]):
                        entries.append(f.entry())
                self._json(entries, head)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("repos", nargs="+", help="TYPE:ORG/NAME=FOLDER[@gated:TOKEN], TYPE one of model, dataset, space")
    args = parser.parse_args()
    repos = {}
    for spec in args.repos:
        spec, _, gate = spec.partition("@gated:")
        kind, _, rest = spec.partition(":")
        repo_id, _, folder = rest.partition("=")
        repos[repo_id] = (folder, kind, gate or None)
    hub = LoopbackHub(repos, args.host, args.port).start()
    print(f"HF_ENDPOINT={hub.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        hub.stop()


if __name__ == "__main__":
    main()

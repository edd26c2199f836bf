"""A local HTTP server speaking the part of the Hugging Face Hub API that huggingface_hub and
datasets use to create a dataset repo, upload (regular and LFS files), commit, branch, list and
download. The real clients are pointed at it with HF_ENDPOINT (and HF_HUB_DISABLE_XET=1).

Faults for tests: ``server.state.faults`` is a list of ``(method, path_regex, action[, skip])``;
after ``skip`` matching requests have passed, the next one consumes the fault and gets
``action``: an HTTP status code, or ``"drop"`` (the connection is closed without an answer).
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
from urllib.parse import parse_qs, unquote, urlparse

TOKEN = "hf_local_test_token_123456"
USER = "tester"


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    private: bool
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    snapshots: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit sha -> files
    lfs_paths: set[str] = field(default_factory=set)


class HubState:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.log: list[tuple[str, str]] = []
        self.faults: list[tuple[str, str, object]] = []
        self.lock = threading.Lock()
        self.counter = 0

    def new_sha(self) -> str:
        self.counter += 1
        return hashlib.sha1(f"commit-{self.counter}-{time.time()}".encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState
    endpoint: str

    def log_message(self, *args):  # quiet
        pass

    # -- plumbing ------------------------------------------------------------------------
    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None, head=False):
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head and self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(data)

    def _error(self, status: int, message: str, code: str | None = None):
        self._send(status, {"error": message}, {"X-Error-Code": code} if code else {"X-Error-Message": message})

    def _fault(self) -> bool:
        with self.state.lock:
            for k, (method, pattern, action, *skip) in enumerate(self.state.faults):
                if method == self.command and re.search(pattern, self.path):
                    if skip and skip[0] > 0:
                        self.state.faults[k] = (method, pattern, action, skip[0] - 1)
                        return False
                    del self.state.faults[k]
                    break
            else:
                return False
        self._body()
        if action == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        self._send(int(action), {"error": "injected"}, {"Retry-After": "0"})
        return True

    def _authorized(self, write: bool, repo_id: str | None = None) -> bool:
        auth = self.headers.get("Authorization", "")
        if auth and auth != f"Bearer {TOKEN}":
            self._error(401, "Invalid credentials in Authorization header")
            return False
        if write and not auth:
            self._error(401, "You must be authenticated")
            return False
        if write and repo_id and not repo_id.startswith(f"{USER}/"):
            self._error(403, f"You don't have the rights to create or write to {repo_id}")
            return False
        return True

    def _repo(self, repo_id: str, write: bool = False) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and self.headers.get("Authorization") != f"Bearer {TOKEN}"):
            self._error(404, "Repository not found", "RepoNotFound")
            return None
        return repo

    def _repo_snapshot(self, repo_id: str, rev: str) -> tuple[Repo, str, dict] | None:
        """The repo and the (commit sha, files) at ``rev``, or None after answering 404."""
        repo = self._repo(repo_id)
        snap = repo and self._snapshot(repo, rev)
        return (repo, *snap) if snap else None

    def _snapshot(self, repo: Repo, rev: str) -> tuple[str, dict] | None:
        rev = unquote(rev)
        sha = repo.branches.get(rev) or (rev if rev in repo.snapshots else None)
        if sha is None:
            self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return None
        return sha, repo.snapshots[sha]

    def _entry(self, repo: Repo, path: str, data: bytes) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha(data)}
        if path in repo.lfs_paths:
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    # -- routes --------------------------------------------------------------------------
    def do_HEAD(self):
        self._route("HEAD")

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_PUT(self):
        self._route("PUT")

    def _route(self, method: str):
        with self.state.lock:
            self.state.log.append((method, self.path))
        if self._fault():
            return
        url = urlparse(self.path)
        path, query = url.path, parse_qs(url.query)
        m = re.fullmatch(r"/api/(?:datasets|models)/([^/]+/[^/]+)/(revision|tree|preupload|commit|branch|paths-info)(?:/([^/]+))?(/.*)?", path)
        if method == "POST" and path == "/api/repos/create":
            return self.create_repo()
        if method == "POST" and path == "/api/validate-yaml":  # the client checks a README's YAML before committing it
            body = json.loads(self._body() or b"{}")
            return self._send(200, {"errors": [], "warnings": []} if "content" in body else {"errors": [{"message": "no content"}]})
        if method == "GET" and path == "/api/whoami-v2":
            return self._send(200, {"name": USER, "type": "user"}) if self._authorized(True) else None
        if m:
            repo_id, action, rev, rest = m.group(1), m.group(2), m.group(3) or "main", (m.group(4) or "")
            return getattr(self, f"api_{action.replace('-', '_')}")(repo_id, rev, rest.lstrip("/"), query)
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
        if m and method == "POST":
            return self.lfs_batch(m.group(1))
        m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if m and method == "PUT":
            data = self._body()
            if hashlib.sha256(data).hexdigest() != m.group(1):
                return self._error(400, "sha256 mismatch")
            with self.state.lock:
                self.state.lfs[m.group(1)] = data
            return self._send(200, {})
        m = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m and method in ("GET", "HEAD"):
            return self.resolve(m.group(1), m.group(2), unquote(m.group(3)), head=method == "HEAD")
        self._error(404, f"no route for {method} {path}")

    def create_repo(self):
        body = json.loads(self._body() or b"{}")
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        if not self._authorized(True, repo_id):
            return
        with self.state.lock:
            if repo_id in self.state.repos:
                return self._send(409, {"error": "You already created this dataset repo", "url": f"{self.endpoint}/datasets/{repo_id}"})
            repo = Repo(private=bool(body.get("private")))
            sha = self.state.new_sha()
            repo.snapshots[sha] = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
            repo.branches["main"] = sha
            self.state.repos[repo_id] = repo
        self._send(200, {"url": f"{self.endpoint}/datasets/{repo_id}", "name": repo_id})

    def api_revision(self, repo_id, rev, rest, query):
        found = self._repo_snapshot(repo_id, rev)
        if not found:
            return
        repo, sha, files = found
        self._send(200, {"id": repo_id, "_id": repo_id, "sha": sha, "private": repo.private, "author": repo_id.split("/")[0],
                         "siblings": [{"rfilename": p} for p in sorted(files)], "tags": [], "downloads": 0, "likes": 0,
                         "lastModified": "2026-01-01T00:00:00.000Z", "disabled": False, "gated": False})

    def api_tree(self, repo_id, rev, rest, query):
        found = self._repo_snapshot(repo_id, rev)
        if not found:
            return
        repo, _, files = found
        prefix = unquote(rest).strip("/")
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        entries, dirs = [], set()
        for p in sorted(files):
            if prefix and not p.startswith(prefix + "/"):
                continue
            rel = p[len(prefix) + 1 :] if prefix else p
            parts = rel.split("/")
            for k in range(1, len(parts)):
                d = "/".join(([prefix] if prefix else []) + parts[:k])
                if (recursive or k == 1) and d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "path": d, "oid": git_blob_sha(d.encode()), "size": 0})
            if recursive or len(parts) == 1:
                entries.append(self._entry(repo, p, files[p]))
        if prefix and not entries and not any(p == prefix for p in files):
            return self._error(404, "Entry not found", "EntryNotFound")
        self._send(200, entries)

    def api_paths_info(self, repo_id, rev, rest, query):
        raw = self._body().decode()
        found = self._repo_snapshot(repo_id, rev)
        if not found:
            return
        repo, _, files = found
        try:
            paths = json.loads(raw)["paths"]
        except (json.JSONDecodeError, KeyError):
            paths = parse_qs(raw).get("paths", [])
        out = []
        for p in paths:
            p = p.strip("/")
            if p in files:
                out.append(self._entry(repo, p, files[p]))
            elif any(f.startswith(p + "/") for f in files):
                out.append({"type": "directory", "path": p, "oid": git_blob_sha(p.encode()), "size": 0})
        self._send(200, out)

    def api_branch(self, repo_id, rev, rest, query):
        self._body()
        if not self._authorized(True, repo_id):
            return
        repo = self._repo(repo_id)
        if not repo:
            return
        branch = unquote(rev)
        with self.state.lock:
            if branch in repo.branches:
                return self._error(409, "Reference already exists")
            repo.branches[branch] = repo.branches["main"]
        self._send(200, {})

    def api_preupload(self, repo_id, rev, rest, query):
        body = json.loads(self._body() or b"{}")
        if not self._authorized(True, repo_id):
            return
        found = self._repo_snapshot(repo_id, rev)
        if not found:
            return
        repo, sha, files = found
        out = []
        for f in body["files"]:
            entry = {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular", "shouldIgnore": False}
            if f["path"] in files:
                entry["oid"] = git_blob_sha(files[f["path"]])
            out.append(entry)
        self._send(200, {"files": out, "commitOid": sha})

    def lfs_batch(self, repo_id):
        body = json.loads(self._body() or b"{}")
        if not self._authorized(True, repo_id):
            return
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.state.lfs:  # already stored: no action, nothing is re-uploaded
                entry["actions"] = {"upload": {"href": f"{self.endpoint}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects})

    def api_commit(self, repo_id, rev, rest, query):
        raw = self._body()
        if not self._authorized(True, repo_id):
            return
        found = self._repo_snapshot(repo_id, rev)
        if not found:
            return
        repo, _, files = found
        files = dict(files)
        lfs_paths = set()
        for line in raw.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                repo.lfs_paths.discard(value["path"])
            elif key == "lfsFile":
                if value["oid"] not in self.state.lfs:
                    return self._error(400, f"LFS object {value['oid']} was never uploaded")
                files[value["path"]] = self.state.lfs[value["oid"]]
                lfs_paths.add(value["path"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
        with self.state.lock:
            sha = self.state.new_sha()
            repo.snapshots[sha] = files
            repo.lfs_paths |= lfs_paths
            pr_url = None
            if query.get("create_pr", ["0"])[0] in ("1", "true"):
                n = sum(1 for b in repo.branches if b.startswith("refs/pr/")) + 1
                repo.branches[f"refs/pr/{n}"] = sha
                pr_url = f"{self.endpoint}/datasets/{repo_id}/discussions/{n}"
            else:
                repo.branches[unquote(rev)] = sha
        self._send(200, {"commitUrl": f"{self.endpoint}/datasets/{repo_id}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": pr_url})

    def resolve(self, repo_id, rev, path, head):
        found = self._repo_snapshot(repo_id, rev)
        if not found:
            return
        repo, sha, files = found
        if path not in files:
            return self._error(404, "Entry not found", "EntryNotFound")
        data = files[path]
        etag = hashlib.sha256(data).hexdigest() if path in repo.lfs_paths else git_blob_sha(data)
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if path in repo.lfs_paths:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        rng = self.headers.get("Range")
        if rng and not head:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng)
            start, end = int(m.group(1)), int(m.group(2) or len(data) - 1)
            part = data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(part) - 1}/{len(data)}"
            return self._send(206, raw=part, headers=headers)
        if head:
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return
        self._send(200, raw=data, headers=headers)


class HubServer:
    def __init__(self):
        self.state = HubState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        handler = type("BoundHandler", (Handler,), {"state": self.state, "endpoint": self.endpoint})
        self.httpd.RequestHandlerClass = handler
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        repo = self.state.repos[repo_id]
        return repo.snapshots[repo.branches[rev]]

    def requests(self, method: str, pattern: str) -> list[str]:
        return [p for m, p in self.state.log if m == method and re.search(pattern, p)]

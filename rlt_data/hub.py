"""``rlt-data push-to-hub``: publish a run folder as a Hugging Face dataset repository.

Publishing only publishes: nothing here selects or rewrites the run. ``push-to-hub --allow-partial``
first selects over the chunks scored so far (``merge.prepare_push``, at the command layer), then
calls ``push``.

Careful by default:
- an incomplete run is refused (``allow_partial`` publishes the folder as its last selection left it);
- every shard's schema is checked against the card's ``dataset_info`` before anything is sent;
- files already on the Hub with the same content are skipped (LFS sha256 or git blob sha1), and
  LFS blobs uploaded by an interrupted run are not sent again (the LFS batch API knows them);
- shards go up in several commits of at most ``files_per_commit`` files, the card last, so the
  card never points at missing shards and a crash keeps the commits already made;
- HTTP 429 and 5xx, and dropped connections, are retried with backoff; 401/403/404 end with a
  one-line error; the token is never printed or written anywhere.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import UserError, first_line
from .options import PushOptions
from .shards import SPLIT_FOLDERS, RunStore


@dataclass
class LocalFile:
    path_in_repo: str
    local: Path
    size: int
    sha256: str
    git_sha1: str


def _hash(path: Path) -> tuple[str, str]:
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(block)
            sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest()


def local_files(root: Path) -> list[LocalFile]:
    paths = [p for folder in SPLIT_FOLDERS.values() for p in sorted((root / folder).glob("*.parquet"))]
    paths += sorted((root / "plots").glob("*.png"))  # the card's pictures
    paths.append(root / "README.md")
    out = []
    for p in paths:
        sha256, sha1 = _hash(p)
        out.append(LocalFile(p.relative_to(root).as_posix(), p, p.stat().st_size, sha256, sha1))
    return out


def check_schemas(root: Path) -> None:
    """Every shard's Arrow schema must match the card's ``dataset_info`` for its config."""
    import pyarrow.parquet as pq
    from datasets import Features
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCard

    try:
        card = DatasetCard.load(root / "README.md")
        infos = DatasetInfosDict.from_dataset_card_data(card.data)
    except Exception as exc:  # missing, or its YAML front matter broken
        raise UserError(f"the card {root / 'README.md'} is missing or damaged ({first_line(exc)}): rerun `rlt-data select {root}` "
                        "with the run's selection options to write it again") from None
    for config, folder in SPLIT_FOLDERS.items():
        info = infos.get(config)
        if info is None or info.features is None:
            raise UserError(f"the card in {root} has no dataset_info for config {config!r}; rerun `rlt-data select {root}`")
        for shard in sorted((root / folder).glob("*.parquet")):
            if Features.from_arrow_schema(pq.read_schema(shard)) != info.features:
                raise UserError(f"{shard.relative_to(root)}: its schema does not match the card's dataset_info; rerun `rlt-data select {root}`")
    from .card import card_mismatches  # rows and fingerprints: a card that contradicts its files fails every Hub load

    wrong = card_mismatches(root, require_fingerprint=False)
    if wrong:
        raise UserError(f"the card in {root} does not describe its files ({wrong[0]}); rerun `rlt-data select {root}` with the run's selection options")


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def friendly_hub_error(exc: BaseException, repo_id: str) -> UserError | None:
    """The one-line error for a Hub answer the user can act on (401, 403, 404, missing revision); None otherwise."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    status = _status(exc)
    if isinstance(exc, RevisionNotFoundError):
        return UserError(f"revision not found in {repo_id} (404): check --revision")
    if isinstance(exc, RepositoryNotFoundError) or status == 404:
        return UserError(f"repository or namespace not found: {repo_id} (404): check the repo id and that your token can see it")
    if status == 401:
        return UserError("authentication failed (401): log in with `hf auth login`, set HF_TOKEN, or pass a valid --token")
    if status == 403:
        return UserError(f"permission denied for {repo_id} (403): check the namespace, your token's write access, or request access")
    return None


def _is_transport_error(exc: BaseException) -> bool:
    """A dropped or refused connection, whichever HTTP client (httpx, httpx2) huggingface_hub uses."""
    return isinstance(exc, (ConnectionError, TimeoutError)) or any(
        cls.__name__ == "TransportError" and cls.__module__.startswith("httpx") for cls in type(exc).__mro__
    )


def _retrying(fn: Callable, retries: int, what: str, repo_id: str, log: Callable[[str], None]):
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            friendly = friendly_hub_error(exc, repo_id)
            if friendly is not None:
                raise friendly from None
            status = _status(exc)
            transient = status == 429 or (status is not None and status >= 500) or _is_transport_error(exc)
            if not transient:
                raise UserError(f"{what} failed: {first_line(exc)}") from None
            if attempt == retries:
                raise UserError(
                    f"{what} failed after {retries + 1} attempt(s) ({status or type(exc).__name__}); "
                    "rerun the same command to resume: finished files are skipped"
                ) from None
            retry_after = getattr(getattr(exc, "response", None), "headers", {}).get("Retry-After")
            delay = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else min(60.0, 2.0**attempt)
            log(f"{what}: {status or type(exc).__name__}, retrying in {delay:.0f}s ({attempt + 1}/{retries})")
            time.sleep(delay)


def _remote_state(api, opts: PushOptions, revision: str) -> dict[str, tuple[str | None, str]]:
    """path -> (lfs sha256 or None, git blob sha1) of the files already on the branch."""
    from huggingface_hub.hf_api import RepoFile

    out = {}
    for entry in api.list_repo_tree(opts.repo_id, repo_type="dataset", revision=revision, recursive=True):
        if isinstance(entry, RepoFile):
            out[entry.path] = (entry.lfs.sha256 if entry.lfs else None, entry.blob_id)
    return out


@dataclass
class Commit:
    add: list[LocalFile]
    delete: list[str]  # paths in the repo


@dataclass
class CommitPlan:
    """What a push sends: ``commits`` in order (the card in the last one, with the deletions)."""

    commits: list[Commit]
    upload: list[LocalFile]  # local files not on the Hub with the same content, in ``local_files`` order
    skip: list[LocalFile]  # already there
    delete: list[str]  # remote shards this run does not have


def plan_commits(files: list[LocalFile], remote: dict[str, tuple[str | None, str]], opts: PushOptions) -> CommitPlan:
    """Which files go up in which commit (no network): ``files`` from ``local_files``, ``remote`` as
    ``_remote_state`` lists the branch; ``opts.files_per_commit`` and ``opts.create_pr`` shape the commits."""
    upload, skip = [], []
    for f in files:
        lfs_sha, git_sha = remote.get(f.path_in_repo, (None, None))
        (skip if f.sha256 == lfs_sha or f.git_sha1 == git_sha else upload).append(f)
    local_paths = {f.path_in_repo for f in files}
    stale = sorted(p for p in remote if p.split("/")[0] in SPLIT_FOLDERS.values() and p.endswith(".parquet") and p not in local_paths)
    shards = [f for f in upload if f.path_in_repo != "README.md"]
    card = [f for f in upload if f.path_in_repo == "README.md"]
    if opts.create_pr:  # a pull request is one commit
        batches = [[*shards, *card]]
    else:
        size = max(1, opts.files_per_commit)
        batches = [shards[i : i + size] for i in range(0, len(shards), size)] + [card]
    batches = [b for b in batches if b] or ([[]] if stale else [])
    commits = [Commit(batch, stale if k == len(batches) - 1 else []) for k, batch in enumerate(batches)]  # stale shards go with the card
    return CommitPlan(commits, upload, skip, stale)


def push(root: str | Path, opts: PushOptions, echo: Callable[[str], None] = print,
         scored: tuple[int, int] | None = None) -> dict:
    """Upload a run folder as it is; returns what was uploaded, skipped and deleted.

    An incomplete run is refused unless ``opts.allow_partial``; ``scored``: its (chunks scored, chunks)
    for that refusal, counted by the caller (``merge.prepare_push``)."""
    opts.validate()
    root = Path(root)
    store = RunStore(root)
    if not store.has_state():
        raise UserError(f"{root} is not an rlt-data run (no .rlt/run.json)")
    with store.lock():  # nothing rewrites the folder while it is read and sent
        return _push(root, store, opts, echo, scored)


def _check_publishable(root: Path, store: RunStore, opts: PushOptions, scored: tuple[int, int] | None) -> None:
    state = store.read_state()
    if state is None:
        raise UserError(f"{root} is not an rlt-data run (no .rlt/run.json)")
    if store.finalizing():
        raise UserError(f"{root}: a rewrite of its published files was interrupted (data/ and the card may come from two "
                        "selections): rerun the command that was writing it (generate, score, select or merge), then push")
    if not state.complete and not opts.allow_partial:
        counts = f" ({scored[0]} of {scored[1]} chunks scored)" if scored is not None else ""
        raise UserError(
            f"{root} is incomplete{counts}: rerun the command that made it, "
            "or pass --allow-partial to publish what is done"
        )
    check_schemas(root)


def _push(root: Path, store: RunStore, opts: PushOptions, echo: Callable[[str], None], scored: tuple[int, int] | None) -> dict:
    from huggingface_hub import HfApi

    _check_publishable(root, store, opts, scored)
    files = local_files(root)
    revision = opts.revision or "main"
    if opts.dry_run:
        _dry_run(files, opts, revision, echo)
        return {"uploaded": [], "skipped": [], "deleted": [], "dry_run": True}

    api = HfApi(endpoint=opts.endpoint, token=opts.token)

    def call(fn, what):
        return _retrying(fn, opts.max_retries, what, opts.repo_id, echo)

    call(lambda: api.create_repo(opts.repo_id, repo_type="dataset", private=opts.private, exist_ok=True), "create repo")
    if revision != "main":
        call(lambda: api.create_branch(opts.repo_id, repo_type="dataset", branch=revision, exist_ok=True), "create branch")
    remote = call(lambda: _remote_state(api, opts, revision), "list remote files")
    plan = plan_commits(files, remote, opts)
    pr_url = _commit(api, plan, opts, revision, call, echo)
    result = {"uploaded": [f.path_in_repo for f in plan.upload], "skipped": [f.path_in_repo for f in plan.skip],
              "deleted": plan.delete, "pr_url": pr_url}
    base = (opts.endpoint or "https://huggingface.co").rstrip("/")
    echo(f"{opts.repo_id}: {len(plan.upload)} file(s) uploaded, {len(plan.skip)} already there, {len(plan.delete)} stale removed")
    echo(pr_url or f"{base}/datasets/{opts.repo_id}" + (f"/tree/{revision}" if revision != "main" else ""))
    return result


def _dry_run(files: list[LocalFile], opts: PushOptions, revision: str, echo: Callable[[str], None]) -> None:
    echo(f"[dry-run] create dataset repo {opts.repo_id} if missing ({'private' if opts.private else 'public'})")
    if revision != "main":
        echo(f"[dry-run] create branch {revision} if missing")
    for f in files:
        echo(f"[dry-run] upload {f.path_in_repo} ({f.size:,} bytes) unless the same file is already there")
    echo(f"[dry-run] delete remote shards under {', '.join(f + '/' for f in SPLIT_FOLDERS.values())} that this run does not have")
    echo(f"[dry-run] commit(s) of at most {opts.files_per_commit} files to {revision}{' as a pull request' if opts.create_pr else ''}, README.md last")


def _commit(api, plan: CommitPlan, opts: PushOptions, revision: str, call: Callable, echo: Callable[[str], None]) -> str | None:
    """The commit loop: one ``create_commit`` per planned commit, in order; the pull request's URL, if any."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    pr_url, n = None, len(plan.commits)
    for k, commit in enumerate(plan.commits):
        operations = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local)) for f in commit.add]
        operations += [CommitOperationDelete(path_in_repo=p) for p in commit.delete]
        message = opts.commit_message if n == 1 else f"{opts.commit_message} ({k + 1}/{n})"
        info = call(
            lambda: api.create_commit(opts.repo_id, operations, commit_message=message, repo_type="dataset",
                                      revision=revision, create_pr=opts.create_pr),
            f"commit {k + 1}/{n}",
        )
        pr_url = getattr(info, "pr_url", None) or pr_url
        echo(f"committed {len(commit.add)} file(s){f' and {len(commit.delete)} deletion(s)' if commit.delete else ''} ({k + 1}/{n})")
    return pr_url

"""One writer per run folder and per shard: a lock file naming its holder.

``DIR/.rlt/run.lock`` is held by the command that drives a run (``generate``, ``score``, ``select``,
``merge``, ``push-to-hub``), ``<shard>/shard.lock`` by the process working on a shard. A lock is a
small JSON file created with ``O_EXCL`` (atomic on local disks and NFS v3+): ``{pid, host,
command, since}``; its holder touches it every ``HEARTBEAT_S`` seconds. It is stale, and taken
over, when its process is gone (same host: the pid is not alive) or its heartbeat stopped
(``STALE_S`` seconds without a touch, for a holder on another host, whose pid cannot be checked).
A fresh lock of another process is one ``Error:`` line naming the holder; ``wait_s`` lets a
retried shard (Ray, Slurm requeue) wait for a lock whose holder on another host may have died
with its node (its heartbeat then stops, and the lock goes stale).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from .errors import UserError

log = logging.getLogger("rlt_data")

HEARTBEAT_S = 20.0
STALE_S = 90.0


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class Lock:
    def __init__(self, path: str | Path, what: str):
        self.path, self.what = Path(path), what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mine = {"pid": os.getpid(), "host": socket.gethostname(), "pidns": _pid_namespace(),
                      "command": " ".join(sys.argv[:2]) or "python", "since": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:  # unreadable (a writer killed between create and write): only its age tells
            return self._age() > STALE_S
        if holder.get("host") == self._mine["host"] and holder.get("pidns") == self._mine["pidns"]:
            # its pid is checkable here (containers sharing a hostname have other pid namespaces)
            return holder.get("pid") == os.getpid() or not process_alive(int(holder.get("pid", 0)))
        return self._age() > STALE_S

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    def live_holder(self) -> dict | None:
        """The holder of a lock that is not stale (another process at work), else None."""
        if not self.path.exists():
            return None
        holder = self.holder()
        return None if self._stale(holder) else (holder or {})

    def acquire(self, wait_s: float = 0.0) -> "Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._create()
            except FileExistsError:
                holder = self.holder()
                if self._stale(holder):
                    log.warning("%s: taking over the lock of a process that is gone (%s)", self.what, describe(holder))
                    self.path.unlink(missing_ok=True)
                    continue
                other_host = holder is not None and (holder.get("host"), holder.get("pidns")) != (self._mine["host"], self._mine["pidns"])
                if other_host and time.monotonic() < deadline:  # its heartbeat decides: alive, or gone with its node
                    time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))
                    continue
                raise UserError(
                    f"{self.what} is in use by {describe(holder)}; wait for it to finish, or, if that process is gone, "
                    f"remove {self.path}"
                ) from None
            break
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="rlt-lock-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _create(self) -> None:
        """The lock file appears whole or not at all: the holder is written to a temporary file that
        is then hard-linked to the lock's name (which fails if it exists), so a kill between
        creating and writing never leaves an empty lock that nobody can read."""
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self._mine), "utf-8")
        try:
            os.link(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return
            except OSError as exc:  # NFS hiccups (ESTALE, EIO): keep beating, the next touch may work
                log.warning("%s: cannot refresh the lock (%s); retrying", self.what, exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        holder = self.holder()
        if holder is not None and holder.get("pid") == self._mine["pid"] and holder.get("host") == self._mine["host"]:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Lock":
        return self if self._thread is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _pid_namespace() -> int | None:
    """This process's pid namespace (Linux): pids are comparable only within one."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def describe(holder: dict | None) -> str:
    if not holder:
        return "another process"
    return f"`{holder.get('command', '?')}` (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})"

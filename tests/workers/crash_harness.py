"""Pieces of the crash and fault tests: relay roles as real subprocesses that can be killed
with SIGKILL and restarted, and a counting webhook receiver that verifies every request with
the official `standardwebhooks` library.

Every process started here carries an environment marker; `RoleProcesses.close()` kills
anything still carrying it, so no role outlives its test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from relay.settings import Settings
from relay.store import Store
from relay.store.connection import async_redis
from tests.support import Receiver

ROOT = Path(__file__).resolve().parents[2]
STANDALONE_ROLES = ("poller", "dispatcher", "worker")


def processes_with(marker: str) -> list[int]:
    """Pids of live (not zombie) processes whose environment contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and (
                "\nState:\tZ" not in (entry / "status").read_text()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of `pid` and their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
    return {child: cmd.decode(errors="replace") for child, cmd in found.items()}


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class RoleProcesses:
    """The relay's roles as subprocesses: `relay <role>` for each standalone role and one
    `relay run` tree (supervisor, api, poller, dispatcher, worker), sharing one environment."""

    env: Mapping[str, str]
    log_dir: Path
    marker: str = field(default_factory=lambda: f"relay-crash-{uuid.uuid4().hex}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)
    starts: Counter[str] = field(default_factory=Counter)

    def start(self, name: str) -> None:
        """Start `name` (a standalone role, or "run" for the whole `relay run` tree)."""
        argv = [sys.executable, "-m", "workers.cli", name]
        env = {**self.env, "RELAY_TEST_MARKER": self.marker}
        log = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        self.starts[name] += 1

    def kill_9(self, name: str) -> None:
        """SIGKILL `name` at once; for "run", the supervisor and all its children together."""
        process = self.processes[name]
        victims = [process.pid]
        if name == "run":
            victims += list(children_of(process.pid))
        for pid in victims:
            _kill(pid)
        process.wait(timeout=10)
        self.kills[name] += 1

    def kill_9_run_child(self, role: str) -> bool:
        """SIGKILL the `relay run` tree's child running `role` (its supervisor restarts it);
        False when that child is not running right now (e.g. waiting to be restarted)."""
        process = self.processes.get("run")
        if process is None or process.poll() is not None:
            return False
        for pid, cmdline in children_of(process.pid).items():
            if cmdline.rstrip().endswith(f"workers.cli {role}"):
                _kill(pid)
                self.kills[f"run/{role}"] += 1
                return True
        return False

    def stop(self, *names: str, timeout_s: float = 60) -> dict[str, int]:
        """SIGTERM each of `names` at once and wait for them; returns their exit codes."""
        stopping = {name: self.processes.pop(name) for name in names}
        for process in stopping.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {}
        for name, process in stopping.items():
            try:
                codes[name] = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill(process.pid)
                codes[name] = process.wait(timeout=10)
        return codes

    def close(self) -> None:
        """Kill every process this object started, and anything still carrying its marker."""
        for process in self.processes.values():
            for pid in [process.pid, *children_of(process.pid)]:
                _kill(pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        self.processes.clear()
        for pid in processes_with(self.marker):
            _kill(pid)


@dataclass(frozen=True)
class Tally:
    """What the receivers saw, summed over them."""

    expected: int  # messages x subscribers
    lost: int
    successful: int  # 2xx answers
    duplicates: int  # 2xx answers beyond the first per (subscriber, documentId)
    requests: int  # every request, including those answered 500
    unverified: int
    ids_per_document: dict[str, set[str]]  # webhook-ids seen per documentId, all receivers

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates / self.expected if self.expected else 0.0


def tally(receivers: list[Receiver], document_ids: set[str]) -> Tally:
    lost = successful = duplicates = requests = unverified = 0
    ids: dict[str, set[str]] = {}
    for receiver in receivers:
        seen = receiver.snapshot()
        requests += len(seen)
        unverified += sum(not d.verified for d in seen)
        ok = Counter(d.document_id for d in seen if 200 <= d.status < 300)
        successful += sum(ok.values())
        duplicates += sum(count - 1 for count in ok.values())
        lost += len(document_ids - set(ok))
        for d in seen:
            ids.setdefault(d.document_id, set()).add(d.webhook_id)
    return Tally(
        expected=len(document_ids) * len(receivers),
        lost=lost,
        successful=successful,
        duplicates=duplicates,
        requests=requests,
        unverified=unverified,
        ids_per_document=ids,
    )


async def setup_relay(
    settings: Settings, accounts: dict[str, str], sim_url: str, urls: list[str]
) -> list[str]:
    """Sources for every account and one subscription per receiver; returns their secrets."""
    client = async_redis(settings.require_redis_url())
    try:
        store = Store.create(client, settings)
        now = time.time()
        for username, password in accounts.items():
            await store.sources.create(
                username=username,
                password=password,
                base_url=sim_url,
                poll_interval_s=settings.poll_interval_s,
                start_from=int(now) - 5,
                now=now,
            )
        secrets = []
        for url in urls:
            subscription = await store.subscriptions.create(
                url=url + "/",
                event_types=None,
                source_ids=None,
                description="crash test",
                headers={},
                enabled=True,
                now=now - 1,
            )
            secrets.append(subscription.signing_secrets(now=now)[0])
        return secrets
    finally:
        await client.aclose()

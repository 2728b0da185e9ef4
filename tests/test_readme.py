"""The README's shell examples run as written against a live `relay dev`.

Every ```sh / ```bash / ```console block of README.md runs, in order, in one bash session
(`set -euo pipefail`, so a failing command or an empty `jq -e` fails the test), from the
repository root, with no REDIS_URL or RELAY_* variables: exactly what a newcomer's second
shell has. A block that cannot run there is marked `<!-- readme-test: skip (why) -->` on the
line before it; the number of those is pinned so the test cannot quietly skip more.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, wait_until_sync

README = ROOT / "README.md"
SHELL_LANGUAGES = ("sh", "bash", "console", "shell")
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\b.*?-->")
EXPECTED_SKIPPED = 2  # `make dev` / `make test` themselves; the admin CLI on a remote relay
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    line: int  # 1-based line of the opening fence
    code: str
    is_skipped: bool


def shell_blocks(text: str) -> list[Block]:
    """The shell blocks of a Markdown text, each marked skipped when the last non-blank line
    before its fence is a skip comment."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if fence.group(1) in SHELL_LANGUAGES:
            before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            code = "\n".join(lines[index + 1 : end])
            blocks.append(Block(index + 1, code, bool(SKIP_MARK.search(before))))
        index = end + 1
    return blocks


def test_shell_blocks_are_found_and_marks_understood() -> None:
    text = "a\n<!-- readme-test: skip (why) -->\n```sh\nmake dev\n```\n"
    text += "```text\nx\n```\n```sh\nls\n```\n"
    assert shell_blocks(text) == [Block(3, "make dev", True), Block(9, "ls", False)]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh `relay dev` on free ports with its own state directory; yields the environment
    of a second shell on this machine (no REDIS_URL, no RELAY_* variables)."""
    shell_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RELAY_", "MC5_", "REDIS_URL", "VIRTUAL_ENV"))
    }
    shell_env["XDG_RUNTIME_DIR"] = str(tmp_path)
    dev_env = {**shell_env, "RELAY_API_PORT": str(free_port())}
    argv = [sys.executable, "-m", "workers.cli", "dev", "--simulator-port", "0"]
    argv += ["--receiver-port", "0"]
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(argv, env=dev_env, cwd=ROOT, stdout=log, stderr=log)
    output = tmp_path / "dev.log"
    try:
        wait_until_sync(
            lambda: "[verified]" in output.read_text() or process.poll() is not None,
            timeout_s=90,
            what="relay dev's first verified webhook",
        )
        assert process.poll() is None, output.read_text()
        yield shell_env
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        log.close()


def test_readme_shell_blocks_run_as_written_against_relay_dev(dev: dict[str, str]) -> None:
    blocks = shell_blocks(README.read_text())
    skipped = [b for b in blocks if b.is_skipped]
    assert len(skipped) == EXPECTED_SKIPPED, [b.line for b in skipped]
    runnable = [b for b in blocks if not b.is_skipped]
    assert len(runnable) >= 6, "the README lost its examples"
    script = ["set -euo pipefail"]
    for block in runnable:
        script += [f"echo '>>> README.md line {block.line}' >&2", block.code]
    assert shutil.which("jq"), "the README's examples need jq (`.ci/ensure-jq` installs it)"
    venv = ROOT / ".venv" / "bin" / "activate"
    assert venv.exists(), f"the README's `source .venv/bin/activate` needs {venv} (make dev)"
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env=dev,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    markers = [line for line in result.stderr.splitlines() if line.startswith(">>> README")]
    assert len(markers) == len(runnable), result.stderr
    assert "hello relay" in result.stdout

"""The Zapier app (integrations/zapier) against a live relay: `npm ci` from the committed
lockfile, then its `createAppTester` tests (node --test), given the relay's address and
admin token; the app itself connects with tenant keys it has the admin token create."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.workers.live_relay import LiveRelay

APP = Path(__file__).resolve().parents[2] / "integrations" / "zapier"
MIN_CASES = 16  # integrations/zapier/test/*.test.js: schema, auth, both triggers, tenants


def test_zapier_app_tests_pass_against_a_live_relay(live_relay: LiveRelay) -> None:
    npm = shutil.which("npm")
    assert npm is not None, "Node 18+ and npm are needed to test the Zapier app"
    install = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=APP, capture_output=True, text=True
    )
    assert install.returncode == 0, install.stderr
    env = {
        **os.environ,
        "RELAY_URL": live_relay.url,
        "RELAY_TOKEN": live_relay.token,
        "RELAY_SIMULATOR_URL": live_relay.simulator_url,
        "RELAY_SIMULATOR_USERNAME": live_relay.username,
    }
    result = subprocess.run(
        [npm, "test"], cwd=APP, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout, result.stdout
    counts = dict(re.findall(r"^# (tests|pass) (\d+)$", result.stdout, re.M))
    # Every case ran and passed, none skipped or dropped with its describe block.
    assert counts["pass"] == counts["tests"] and int(counts["tests"]) >= MIN_CASES, counts

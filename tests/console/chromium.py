"""Finding Debian's Chromium and launching it headless through Playwright (no browser
downloads: `playwright install` is never run). Tests skip loudly when either is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser")
INSTALL_HINT = "install it with .ci/ensure-chromium (apt-get install -y chromium)"


def chromium_path() -> str | None:
    """The Chromium executable on PATH (or /usr/bin/chromium), if any."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    fallback = Path("/usr/bin/chromium")
    return str(fallback) if fallback.exists() else None


def missing_reason() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "BROWSER TESTS SKIPPED: playwright is not installed (pip install playwright)"
    if chromium_path() is None:
        return f"BROWSER TESTS SKIPPED: no chromium executable found; {INSTALL_HINT}"
    return None

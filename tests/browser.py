"""A headless Chromium for the browser tests, and pages rendered in it.

Debian's chromium-headless-shell (what `make chromium` installs: `apt-get install -y
--no-install-recommends chromium-headless-shell`) or chromium, found on the PATH in that
order, or CHROMIUM naming another Chrome or Chromium binary. Without one the browser tests
fail, unless SKIP_BROWSER_TESTS=1 says to skip them (CI never does). They are marked
`browser`: `pytest -m browser` runs them alone, `-m "not browser"` leaves them out.
"""

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Any host but the server is unknown: nothing can come from elsewhere.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    # The DOM is taken once 10 s of virtual time have passed (ReDoc renders only after
    # fetching the document, the CORS page after its calls); virtual time skips ahead
    # while the page is idle, and waits while it fetches.
    "--virtual-time-budget=10000",
    "--enable-logging=stderr",  # the console's messages, as lines with ":CONSOLE"
    "--v=0",
]
CHROMIUM_TIMEOUT = 120  # seconds: a page takes 3 to 10 on a busy machine

# Debian's browser alone (no desktop, a fraction of the packages), then the full browser.
CHROMIUM_NAMES = ["chromium-headless-shell", "chromium"]


def find_chromium() -> str:
    """The Chromium binary to run; a failed test saying how to get one when none is there
    (a skipped one with SKIP_BROWSER_TESTS=1)."""
    names = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else CHROMIUM_NAMES
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    wanted = " or ".join(repr(name) for name in names)
    if os.environ.get("SKIP_BROWSER_TESTS") == "1":
        pytest.skip(f"SKIP_BROWSER_TESTS=1 and no {wanted}: not run in a browser")
    pytest.fail(
        f"The browser tests run in headless Chromium, and {wanted} is not installed. Install it "
        "(`make chromium`; Debian: `apt-get install -y --no-install-recommends "
        "chromium-headless-shell`), or set CHROMIUM to a Chrome or Chromium binary, or set "
        "SKIP_BROWSER_TESTS=1 to skip the browser tests.",
        pytrace=False,
    )


def render(chromium: str, url: str, profile: Path) -> tuple[str, list[str]]:
    """The page's DOM once its scripts are done, and what it wrote on the console."""
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
    # Chromium's renderer, GPU and zygote processes share its new process group: on a
    # timeout, and once it is done, the whole group goes.
    browser = subprocess.Popen(  # noqa: S603 - fixed command line
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        dom, log = browser.communicate(timeout=CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(browser.pid, signal.SIGKILL)
        browser.communicate()
        pytest.fail(f"Chromium did not finish {url} within {CHROMIUM_TIMEOUT} s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGKILL)
    # Chromium exits with 0 whatever happened to the page: the DOM and the console tell.
    assert dom.strip(), f"Chromium returned no page for {url} (exit {browser.returncode}):\n{log}"
    return dom, [line for line in log.splitlines() if ":CONSOLE" in line]

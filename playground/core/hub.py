"""Is a model hub reachable? Decided once, at start, in about two seconds at most.

huggingface_hub retries a Hub that does not answer for about 48 s per file (five backoffs, then an etag
timeout) and no setting shortens that. So the app asks once with a short timeout, and when no Hub answers it
runs the whole process offline: every library then fails at once from its cache instead of retrying.
Standard library only, so app.py can call it before gradio (which imports huggingface_hub).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_SECONDS = 2.0
# A small file of a public default model; any Hub answers for it (200, or 401/404 from a mirror without it).
PROBE_REPO = "Qwen/Qwen2.5-0.5B-Instruct"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class HubAccess:
    reachable: bool
    reason: str  # for the start-up line and the status panel
    seconds: float = 0.0


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_requested() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def probe_hub(timeout: float = PROBE_TIMEOUT_SECONDS, repo_id: str = PROBE_REPO) -> HubAccess:
    """One HEAD of a small file, the request a download starts with. An HTTP answer below 500 means a Hub is
    there (a gated or missing file still answers); no answer within `timeout` means none is."""
    url = f"{endpoint()}/{repo_id}/resolve/main/config.json"
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "foundation-playground/hub-probe"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reachable, reason = True, f"{endpoint()} answered {response.status}"
    except urllib.error.HTTPError as error:  # an answer, just not a 2xx (a redirect is followed)
        reachable, reason = error.code < 500, f"{endpoint()} answered {error.code}"
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reachable, reason = False, f"{endpoint()} did not answer ({getattr(error, 'reason', error)})"
    return HubAccess(reachable, reason, time.perf_counter() - start)


def go_offline() -> None:
    """Offline for the rest of the process: the variable for what reads it later (Settings, subprocesses,
    huggingface_hub if not imported yet) and the constant huggingface_hub already read at import (its
    `is_offline_mode()` and request hook read the constant at call time, and transformers asks that function)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True


def decide_hub_access(timeout: float = PROBE_TIMEOUT_SECONDS) -> HubAccess:
    """Once at start: offline when asked (HF_HUB_OFFLINE=1), else probe, and go offline when no Hub answers."""
    if offline_requested():
        return HubAccess(False, "HF_HUB_OFFLINE=1 is set")
    access = probe_hub(timeout)
    if not access.reachable:
        go_offline()
    return access

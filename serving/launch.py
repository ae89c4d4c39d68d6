"""The arguments of `demo.launch` that guard the server, in one place for the app and the tests."""

from __future__ import annotations

from starlette.middleware import Middleware

from playground.core.settings import Limits
from serving.files import private_paths
from serving.request_size import RequestSizeLimit
from serving.requests import RequestChecks


def launch_options(limits: Limits) -> dict:
    """Upload caps, blocked paths, how many visitors' state (inputs Gradio keeps per session, step sessions)
    stays in memory, and the request checks. The size limit is the outermost middleware, so nothing inside
    it ever reads a body past the cap."""
    return {
        "max_file_size": limits.max_upload_mb * 1024 * 1024,  # Gradio answers 413; the browser says so first
        "blocked_paths": private_paths(),
        "state_session_capacity": limits.max_sessions,
        "app_kwargs": {"middleware": [
            Middleware(RequestSizeLimit, max_bytes=limits.max_request_bytes),
            Middleware(RequestChecks, max_files=limits.max_files_per_upload),
        ]},
    }

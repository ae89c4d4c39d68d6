"""How the app meets its visitors over HTTP: the files they may send, the files the server gives back,
and the requests it refuses before Gradio sees them. `app.py` applies all of it through `launch_options`,
`serve_files_safely` and `upload_cleanup`."""

from serving.files import launch_options, serve_files_safely, upload_cleanup

__all__ = ["launch_options", "serve_files_safely", "upload_cleanup"]

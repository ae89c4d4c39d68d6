"""How the app meets its visitors over HTTP: the files they may send, the files the server gives back, a
fair share of the queue, and the requests it refuses before Gradio sees them. `app.py` applies all of it
through `launch_options`, `serve_files_safely`, `upload_cleanup` and `admit_fairly`."""

from serving.fair_queue import admit_fairly
from serving.files import serve_files_safely, upload_cleanup
from serving.launch import launch_options

__all__ = ["admit_fairly", "launch_options", "serve_files_safely", "upload_cleanup"]

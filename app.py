"""Foundation Models Playground: one tab per concept, every model loaded once through one cache.

`python app.py --help` lists the flags. Importing this module builds `demo` without launching it
(for tests, `gradio app.py` reloading, and Hugging Face Spaces).
"""

from __future__ import annotations

import argparse
import os

# No calls home: set before gradio or huggingface_hub are imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# On a Space, visitors arrive through the host's proxies, from private addresses, which name the visitor in
# X-Forwarded-For. Trusting those (uvicorn reads this) gives each visitor their own fair share of the queue
# (serving/fair_queue.py) instead of one share for everyone.
if os.environ.get("SPACE_ID"):
    os.environ.setdefault("FORWARDED_ALLOW_IPS", "127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7")

# Gradio notices a client that left only when its event stream wakes (a message or a heartbeat, 15 s by
# default); every 2 s, work nobody waits for stops soon after the page closes (playground/core/stopping.py).
os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "2")

# Once, before any library can wait on a Hub: with none reachable the whole process runs offline, so a model
# that is not here fails at once (and the dropdowns say so) instead of after 48 s of retries.
from playground.core.hub import decide_hub_access  # noqa: E402

HUB_ACCESS = decide_hub_access()

import gradio as gr  # noqa: E402

from playground.core.lessons import load_lessons  # noqa: E402
from playground.core.service import ModelService  # noqa: E402
from playground.core.settings import MODEL_KINDS, load_settings  # noqa: E402
from gradio.context import get_blocks_context  # noqa: E402

from serving import admit_fairly, launch_options, serve_files_safely, upload_cleanup  # noqa: E402
from tabs import lessons, status, tab_modules  # noqa: E402
from serving.zero_gpu import ZERO_GPU_PRELOAD, import_spaces_first, run_model_events_on_gpu  # noqa: E402
from tabs.common import stop_unwanted_work  # noqa: E402

# On ZeroGPU, `spaces` patches torch before anything touches CUDA (the service picks the device); else None.
SPACES = import_spaces_first()

TITLE = "Foundation Models Playground"


def build_app(service: ModelService) -> gr.Blocks:
    lesson_by_tab = load_lessons()
    settings = service.settings
    tab_inputs: dict[str, lessons.TabInputs] = {}
    with gr.Blocks(title=TITLE, delete_cache=upload_cleanup(settings.limits)) as demo:
        gr.Markdown(f"# {TITLE}\nSee how foundation models behave: one concept per tab, real models underneath.")
        modules = tab_modules()
        if modules:  # an empty gr.Tabs breaks Gradio's front end
            with gr.Tabs() as tabs:
                for module in modules:
                    tab_id = module.__name__.rsplit(".", 1)[-1]
                    with gr.Tab(module.TITLE, id=tab_id):
                        header = gr.Column()  # filled after the tab, so the lesson can find its events
                        before = lessons.event_ids()
                        module.build(service)
                        tab_inputs[tab_id] = lessons.collect_tab_inputs(tab_id, before)
                        if tab_id in lesson_by_tab:
                            lessons.build_lesson(lesson_by_tab[tab_id], tab_inputs[tab_id], header)
            linkable = lessons.linkable_components(tab_inputs)

            def open_deep_link(request: gr.Request) -> list:
                return lessons.apply_deep_link(request, tab_inputs, lesson_by_tab, linkable)

            demo.load(open_deep_link, None, [tabs, *linkable], api_visibility="private", concurrency_limit=None)
        status.build(service)

        def free_visitor(request: gr.Request) -> None:
            """The page was closed: free what the server kept for this visitor."""
            if request.session_hash is not None:
                service.step_sessions.drop(request.session_hash)

        demo.unload(free_visitor)
        lessons.serve_presets_once(get_blocks_context().fns, tab_inputs, lesson_by_tab, service)
        stop_unwanted_work(get_blocks_context().fns)
        run_model_events_on_gpu(get_blocks_context().fns, SPACES)
    serve_files_safely(demo, settings.limits)
    # api_open=False: a queued event cannot be called around the queue (/gradio_api/run/...), which
    # would skip both the model slot and the fair share; Gradio opens it by default off Spaces.
    demo.queue(default_concurrency_limit=1, api_open=False)
    admit_fairly(demo, settings.limits)  # per-visitor caps and the queue's size (max_queue_size)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=TITLE)
    # Spaces set GRADIO_SERVER_NAME/PORT; honour them so the repo runs unchanged as a Space.
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument("--config", help="TOML settings file (see README)")
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", choices=["auto", "float32", "float16", "bfloat16"])
    parser.add_argument("--model", action="append", default=[], metavar="KIND=SOURCE",
                        help=f"add a model and make it the default; KIND is one of {', '.join(MODEL_KINDS)}")
    parser.add_argument("--preload", action="append", default=[], metavar="KIND[:NAME]",
                        help="load this model before serving (e.g. language, clip, text_to_image)")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace):
    overrides: dict = {key: getattr(args, key) for key in ("device", "dtype") if getattr(args, key)}
    models: dict[str, list[str]] = {}
    for entry in args.model:
        kind, separator, source = entry.partition("=")
        if not separator:
            raise SystemExit(f"--model takes KIND=SOURCE, got {entry!r}")
        models.setdefault(kind, []).append(source)
    if models:
        overrides["models"] = models
    if args.preload:
        overrides["preload"] = args.preload
    return load_settings(args.config, overrides)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"Model hub: {'reachable' if HUB_ACCESS.reachable else 'offline'} ({HUB_ACCESS.reason}); models that "
          "cannot load now are marked in the dropdowns.", flush=True)
    service = ModelService(settings_from_args(args))
    if SPACES is not None:  # ZeroGPU: models load at start in this process, never inside a GPU call
        loadable = [kind for kind in ZERO_GPU_PRELOAD if service.availability(kind, service.default_name(kind)).loadable]
        service.preload(tuple(loadable))
    if service.settings.preload:
        print(f"Preloading {', '.join(service.settings.preload)} …", flush=True)
        service.preload(service.settings.preload)
    demo = build_app(service)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True,
                **launch_options(service.settings.limits))
    if args.share and not demo.share_url:
        print(
            "No public share link: the tunnel could not be opened (no internet, or Gradio's tunnel binary "
            f"could not be downloaded). The app is still serving on http://{args.host}:{args.port}; "
            "use --host 0.0.0.0 to reach it from the local network.",
            flush=True,
        )
    demo.block_thread()


if __name__ == "__main__":
    main()
else:
    demo = build_app(ModelService.from_environment())

"""What every tab shares: turning errors into messages, model pickers, knob inputs, settings-object callbacks,
first-load progress, and queue settings."""

from __future__ import annotations

import functools
import html
import inspect
import logging
from typing import Any, Callable, Sequence

import gradio as gr

from playground.core.errors import PlaygroundError
from playground.core.knobs import SAMPLING_KNOBS, SEED, Knob
from playground.core.service import ModelService
from playground.core.stopping import watched, watching
from playground.language.backend import LanguageBackend

log = logging.getLogger("playground")


def _message(error: Exception) -> str:
    if isinstance(error, PlaygroundError):
        return str(error)
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return "The server ran out of memory for this request; try a smaller one."
    return f"Something went wrong ({type(error).__name__}); the error was logged on the server."


def user_errors(function: Callable) -> Callable:
    """Show failures as a clear message in the UI (gr.Error), never a traceback; log the unexpected.
    Messages quote what a visitor typed, and the error toast renders HTML: they are escaped."""

    def report(error: Exception) -> gr.Error:
        if not isinstance(error, PlaygroundError):
            log.exception("unexpected error in %s", function.__name__)
        return gr.Error(html.escape(_message(error), quote=False))

    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any):
            try:
                yield from function(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as error:
                raise report(error) from None

        return generator

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as error:
            raise report(error) from None

    return wrapper


def model_choices(service: ModelService, kind: str) -> list[tuple[str, str]]:
    """(label, name) per registered model; one that cannot load now says why in its label, its name unchanged."""
    choices = []
    for name in service.registry.names(kind):
        found = service.availability(kind, name)
        choices.append((name if found.loadable else f"{name} ({found.label})", name))
    return choices


def loadable(service: ModelService, kind: str, names: tuple[str, ...] | list[str]) -> list[str]:
    """The registered names among `names` that can load now (a tab's default selection)."""
    registered = service.registry.names(kind)
    return [name for name in names if name in registered and service.availability(kind, name).loadable]


def availability_note(service: ModelService, kind: str) -> str:
    """What a tab says at once when its usual models cannot load here: which one it uses instead and the
    command that fetches the others, or that none can load and why."""
    names = service.registry.names(kind)
    missing = [(name, found) for name in names if not (found := service.availability(kind, name)).loadable]
    if not missing:
        return ""
    if len(missing) == len(names):
        return f"Nothing here can load yet. {missing[0][1].message}"
    first_name, first = missing[0]
    where = "offline" if service.settings.offline else "here"
    using = f"using {service.default_name(kind)}; " if first_name == service.registry.default(kind) else ""
    needs = f"needs `{first.fix}`" if first.fix else first.label
    return f"{where}: {using}{first_name} {needs}" + (
        f" ({len(missing) - 1} more marked in the list)" if len(missing) > 1 else "")


def model_picker(service: ModelService, kind: str, label: str = "Model") -> gr.Dropdown:
    specs = service.registry.specs(kind)
    default = service.default_name(kind)
    info = availability_note(service, kind) or "; ".join(
        f"{spec.name}: {spec.note}" for spec in specs if spec.name == default and spec.note)
    return gr.Dropdown(choices=model_choices(service, kind), value=default, label=label, info=info or None)


def knob_input(knob: Knob, **overrides: Any) -> gr.Slider | gr.Number:
    """The one way a tab shows a knob, with its declared range (`playground.core.knobs`): a slider, or a number
    box for whole numbers with a huge range (top-k, seed). A tab may change the value, label or help, not the range."""
    if set(overrides) - {"value", "label", "info", "scale"}:
        raise TypeError(f"a knob's range is declared once; got {sorted(overrides)}")
    args = {"value": knob.default, "label": knob.label, "info": knob.info or None, "minimum": knob.minimum,
            "maximum": knob.maximum, **overrides}
    if knob.integer:
        return gr.Number(precision=0, **args)
    return gr.Slider(step=knob.step, **args)


def prompt_and_knobs(service: ModelService, prompt: str = "The capital of France is"
                     ) -> tuple[gr.Dropdown, gr.Checkbox, gr.Textbox, list[gr.Slider | gr.Number], gr.Number]:
    """What opens the sampling tabs: the model, the chat-template choice, the prompt, the sampling knobs (in
    `SAMPLING_KNOBS` order) and the seed."""
    with gr.Row():
        model_choice = model_picker(service, "language")
        chat_template = gr.Checkbox(False, label="Use the chat template", info="for instruct models; plain text otherwise")
    prompt_box = gr.Textbox(prompt, label="Prompt", lines=2, max_length=service.settings.limits.max_prompt_chars)
    with gr.Row():
        knob_inputs = [knob_input(knob) for knob in SAMPLING_KNOBS]
        seed_box = knob_input(SEED)
    return model_choice, chat_template, prompt_box, knob_inputs, seed_box


def settings_parameter(parameter: str, names: Sequence[str], build: Callable[..., Any]) -> Callable[[Callable], Callable]:
    """Let a callback take one settings object while Gradio, gradio_client, deep links and lessons.toml keep
    seeing one parameter per value, under the public names `names` (the knobs' declared names).

    The wrapper's `__signature__` lists `names` where the callback has `parameter`; a call gathers those values
    into `build(**values)` and hands the callback that object."""

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        public: list[inspect.Parameter] = []
        for param in signature.parameters.values():
            if param.name == parameter:
                public += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
            else:
                public.append(param)
        public_signature = signature.replace(parameters=public)

        def arguments(args: tuple, kwargs: dict) -> dict:
            values = dict(public_signature.bind(*args, **kwargs).arguments)
            gathered = build(**{name: values.pop(name) for name in names})
            return {**values, parameter: gathered}

        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def generator(*args: Any, **kwargs: Any):
                yield from function(**arguments(args, kwargs))

            wrapper: Callable = generator
        else:

            @functools.wraps(function)
            def wrapper(*args: Any, **kwargs: Any):
                return function(**arguments(args, kwargs))

        wrapper.__signature__ = public_signature  # what Gradio reads for the API's parameter names
        return wrapper

    return decorate


def load_language(service: ModelService, name: str | None, progress: gr.Progress | None) -> LanguageBackend:
    """A language model, whichever backend serves it, loaded through the cache (with progress on a first load)."""
    return load_with_progress(service, "language", name, progress)


def load_with_progress(service: ModelService, kind: str, name: str | None, progress: gr.Progress | None) -> Any:
    """Load through the cache; on a first load, show it in the progress bar."""

    def announce(message: str) -> None:
        if progress is not None:
            progress(0, desc=message)

    return service.load(kind, name, on_first_load=announce)


# Queue settings for events. Everything that runs a model shares one slot per server, so a room
# of students queues for the GPU instead of running it out of memory; cheap events run freely.
MODEL_EVENT = {"concurrency_id": "model", "concurrency_limit": 1}
CHEAP_EVENT = {"concurrency_limit": None}
LANGUAGE_CONCURRENCY_ID = "language"


def language_event(service: ModelService) -> dict:
    """Queue settings for the language tabs' model events. With a backend registered whose requests need not
    take turns many run at once: an inference server batches them, and so does a local model's batcher
    (`playground.language.batcher`), which needs enough of them in flight to fill a batch. Backends that do
    take turns do so through `local_model_turns`; with only those, they queue for the one slot like every
    other model."""
    if not all(service.language_takes_turns(spec.name) for spec in service.registry.specs("language")):
        limits = service.settings.limits
        return {"concurrency_id": LANGUAGE_CONCURRENCY_ID,
                "concurrency_limit": max(limits.remote_concurrency, limits.max_batch_rows)}
    return MODEL_EVENT


def local_model_turns(service: ModelService) -> Callable[[Callable], Callable]:
    """Run a language-model callback (one with a `model` parameter) alone when its backend says requests take
    turns (a local model: seeded generation and the GPU are shared); others (an inference server) go straight
    through."""

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)

        def goes_through(args: tuple, kwargs: dict) -> bool:
            return not service.language_takes_turns(signature.bind_partial(*args, **kwargs).arguments.get("model"))

        if inspect.isgeneratorfunction(function):

            @functools.wraps(function)
            def generator(*args: Any, **kwargs: Any):
                if goes_through(args, kwargs):
                    yield from function(*args, **kwargs)
                    return
                with service.local_turn:
                    yield from function(*args, **kwargs)

            return generator

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any):
            if goes_through(args, kwargs):
                return function(*args, **kwargs)
            with service.local_turn:
                return function(*args, **kwargs)

        return wrapper

    return decorate


def _request_still_wanted() -> Callable[[], bool] | None:
    """For the event being served: False once it is cancelled (Stop, the /cancel route) or its client left.

    Gradio frees a cancelled event's queue slot at once, but the function keeps running on its thread (a
    generator until its next yield), and a disconnected client's event runs to its end: so the library's
    loops ask this between model calls. It reads the queue's own record of the event (Gradio 6: a cancelled
    event leaves `active_jobs`; a lost client's is marked not `alive`)."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queue = getattr(blocks, "_queue", None)
    if queue is None or event_id is None:
        return None  # not a queued event: nothing can stop it early

    def wanted() -> bool:
        for job in list(queue.active_jobs):
            for event in job or ():
                if event._id == event_id:
                    return event.alive
        return False

    return wanted


def _stops_when_unwanted(function: Callable) -> Callable:
    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any):
            yield from watched(function(*args, **kwargs), _request_still_wanted())

        return generator

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any):
        with watching(_request_still_wanted()):
            return function(*args, **kwargs)

    return wrapper


def stop_unwanted_work(fns: dict) -> None:
    """Make every event's model loops stop within one model call once nobody waits for the result."""
    for block_fn in fns.values():
        if block_fn.fn is not None:
            block_fn.fn = _stops_when_unwanted(block_fn.fn)

"""Explanations, one-click presets and shareable deep links, added around each tab.

Tabs need no code for this: presets name an endpoint (`api_name`) and its parameters, and this module
finds that event among the tab's events, sets the inputs, and runs the same function.
"""

from __future__ import annotations

import functools
import html
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import gradio as gr
from gradio.block_function import BlockFunction
from gradio.context import get_blocks_context

from playground.core.lessons import Lesson, deep_link_query, is_shipped_file
from playground.core.preset_cache import fingerprint, merged_updates
from serving.files import shipped

# Components whose value a link can carry as text.
_LINKABLE = (gr.Textbox, gr.Number, gr.Slider, gr.Checkbox, gr.Dropdown, gr.Radio, gr.CheckboxGroup)
_MAX_LINK_VALUE = 2_000


@dataclass
class TabInputs:
    """The named inputs of one tab's endpoints: parameter name -> component."""

    tab: str
    by_name: dict[str, gr.components.Component]
    endpoints: dict[str, BlockFunction]


def event_ids() -> set[int]:
    return set(get_blocks_context().fns)


def collect_tab_inputs(tab: str, before: set[int]) -> TabInputs:
    """The endpoints created since `before` and their inputs, by the names gradio_client uses."""
    fns = get_blocks_context().fns
    endpoints: dict[str, BlockFunction] = {}
    by_name: dict[str, gr.components.Component] = {}
    for fn_id in sorted(set(fns) - before):
        block_fn = fns[fn_id]
        if not isinstance(block_fn.api_name, str) or block_fn.api_visibility == "private":
            continue
        endpoints["/" + block_fn.api_name] = block_fn
        for name, component in zip(block_fn.input_parameter_names, block_fn.inputs):
            if name is not None:
                by_name.setdefault(name, component)
    return TabInputs(tab, by_name, endpoints)


def coerce(component: gr.components.Component, text: str) -> Any:
    """A link's text as the component's value; ValueError if it does not fit."""
    if len(text) > _MAX_LINK_VALUE:
        raise ValueError("too long")
    if isinstance(component, gr.Checkbox):
        if text.lower() not in {"true", "false", "1", "0"}:
            raise ValueError("not a boolean")
        return text.lower() in {"true", "1"}
    if isinstance(component, (gr.Number, gr.Slider)):
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("not finite")
        low, high = getattr(component, "minimum", None), getattr(component, "maximum", None)
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError("out of range")
        return int(number) if number.is_integer() and getattr(component, "precision", None) == 0 else number
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        choices = [choice[1] if isinstance(choice, tuple) else choice for choice in component.choices]
        if text not in choices:
            raise ValueError("not one of the choices")
        return text
    if isinstance(component, gr.CheckboxGroup):
        choices = {choice[1] if isinstance(choice, tuple) else choice for choice in component.choices}
        parts = [part for part in text.split(",") if part]
        if any(part not in choices for part in parts):
            raise ValueError("not among the choices")
        return parts
    return text


def _served(values: Mapping[str, Any]) -> dict[str, Any]:
    """Preset values with each shipped file as its copy in Gradio's upload folder (made again if the
    cleanup deleted it): the app serves nothing from its checkout."""
    return {name: shipped(value) if is_shipped_file(value) else value for name, value in values.items()}


def link_updates(inputs: TabInputs, query: Mapping[str, str], lesson: Lesson | None) -> tuple[dict, list[str]]:
    """Component -> value from a preset and/or explicit parameters; names of parameters ignored."""
    values: dict[str, Any] = {}
    ignored: list[str] = []
    preset = lesson.preset(query["preset"]) if lesson and query.get("preset") else None
    if query.get("preset") and preset is None:
        ignored.append(f"preset={query['preset']}")
    if preset is not None:
        values.update(_served(preset.values))
    for name, text in query.items():
        if name in ("tab", "preset"):
            continue
        component = inputs.by_name.get(name)
        if component is None or not isinstance(component, _LINKABLE):
            ignored.append(name)
            continue
        try:
            values[name] = coerce(component, text)
        except ValueError:
            ignored.append(name)
    updates = {inputs.by_name[name]: value for name, value in values.items() if name in inputs.by_name}
    return updates, ignored


def apply_deep_link(request: gr.Request, tabs: dict[str, TabInputs], lessons: dict[str, Lesson],
                    outputs: list[gr.components.Component]) -> list[Any]:
    """On page load: open the linked tab and fill in the linked values (bad ones are skipped, with a note).
    A link is anyone's to write, so what it says is escaped when echoed: a toast renders HTML."""
    query = dict(request.query_params) if request is not None else {}
    tab = query.get("tab")
    if tab not in tabs:
        if tab is not None:
            gr.Warning(f"This link names an unknown tab {html.escape(repr(tab[:40]))}; showing the start page.")
        return [gr.update()] * (len(outputs) + 1)
    updates, ignored = link_updates(tabs[tab], query, lessons.get(tab))
    if ignored:
        names = ", ".join(html.escape(name[:40]) for name in ignored[:8])
        gr.Warning(f"Ignored link values that do not fit this tab: {names}.")
    return [gr.Tabs(selected=tab)] + [updates.get(component, gr.update()) for component in outputs]


def linkable_components(tabs: dict[str, TabInputs]) -> list[gr.components.Component]:
    seen: dict[int, gr.components.Component] = {}
    for inputs in tabs.values():
        for component in inputs.by_name.values():
            if isinstance(component, _LINKABLE):
                seen.setdefault(component._id, component)
    return list(seen.values())


def build_lesson(lesson: Lesson, inputs: TabInputs, header: gr.Column) -> None:
    """Fill `header` (placed above the tab's controls) with the explanation, presets and a share link."""
    with header:
        with gr.Accordion("What to notice", open=False):
            gr.Markdown(lesson.explanation)
        with gr.Row(equal_height=True):
            for preset in lesson.presets:
                _preset_button(preset, inputs)
        with gr.Accordion("Share this setup", open=False):
            share = gr.Button("Make a link to the current settings", size="sm")
            link = gr.Textbox(label="Link", buttons=["copy"], interactive=False)
    linkable = {name: c for name, c in inputs.by_name.items() if isinstance(c, _LINKABLE)}

    def query_for(*values: Any) -> str:
        return deep_link_query(inputs.tab, dict(zip(linkable, values)))

    share.click(query_for, list(linkable.values()), link, queue=False, api_visibility="private").then(
        None, link, link, js="(q) => window.location.origin + window.location.pathname + q"
    )


def _preset_button(preset, inputs: TabInputs) -> None:
    endpoint = inputs.endpoints[preset.endpoint]
    targets = [inputs.by_name[name] for name in preset.values]
    with gr.Column(min_width=180):
        button = gr.Button(preset.label, size="sm", variant="secondary")
        gr.Markdown(f"<small>{preset.shows}</small>")
    button.click(lambda: [*_served(preset.values).values()], None, targets, queue=False, api_visibility="private").then(
        endpoint.fn, endpoint.inputs, endpoint.outputs, api_visibility="private",
        concurrency_id=endpoint.concurrency_id, concurrency_limit=endpoint.concurrency_limit,
    )


def _is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value == gr.skip()


def _preset_cached(function: Callable, endpoint: str, names: list[str], presets: list, service) -> Callable:
    """`function`, serving requests equal to one of `presets` from the service's preset cache."""
    signature = inspect.signature(function)
    wanted = [{name: fingerprint(value) for name, value in preset.values.items()} for preset in presets]

    def cache_key(args: tuple, kwargs: dict) -> tuple | None:
        """The request's key if it equals a preset (and is not random: seed -1), else None."""
        arguments = signature.bind_partial(*args, **kwargs).arguments
        values = {name: fingerprint(arguments.get(name)) for name in names}
        if isinstance(values.get("seed"), float) and values["seed"] < 0:
            return None
        if not any(all(values.get(name) == value for name, value in preset.items()) for preset in wanted):
            return None
        return (endpoint, tuple(sorted(values.items())))

    def model_of(args: tuple, kwargs: dict) -> Callable[[], tuple]:
        name = signature.bind_partial(*args, **kwargs).arguments.get("model")
        return lambda: service.model_identity(name) if isinstance(name, str) else ()

    if inspect.isgeneratorfunction(function):

        @functools.wraps(function)
        def generator(*args: Any, **kwargs: Any):
            key = cache_key(args, kwargs)
            if key is None:
                yield from function(*args, **kwargs)
                return
            yield from service.presets.stream(key, model_of(args, kwargs), lambda: function(*args, **kwargs),
                                              lambda yielded: merged_updates(yielded, _is_skip))

        return generator

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any):
        key = cache_key(args, kwargs)
        if key is None:
            return function(*args, **kwargs)
        return service.presets.get(key, model_of(args, kwargs), lambda: function(*args, **kwargs))

    return wrapper


def serve_presets_once(fns: dict, tabs: dict[str, TabInputs], lessons: dict[str, Lesson], service) -> None:
    """Every event that runs a preset's endpoint (its API, and the preset button's own event) answers a
    request equal to a preset from `service.presets`: computed once per model (playground/core/preset_cache.py).
    Call before other wrappers replace the events' functions: events are matched by function."""
    endpoints: dict[int, tuple[str, list[str], list]] = {}
    for tab, lesson in lessons.items():
        if tab not in tabs:
            continue
        for preset in lesson.presets:
            block_fn = tabs[tab].endpoints[preset.endpoint]
            names = [name for name in block_fn.input_parameter_names if name is not None]
            endpoint = endpoints.setdefault(id(block_fn.fn), (f"{tab}{preset.endpoint}", names, []))
            endpoint[2].append(preset)
    for block_fn in fns.values():
        if block_fn.fn is not None and id(block_fn.fn) in endpoints:
            endpoint, names, presets = endpoints[id(block_fn.fn)]
            block_fn.fn = _preset_cached(block_fn.fn, endpoint, names, presets, service)

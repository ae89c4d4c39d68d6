"""Each knob is declared once (playground/core/knobs.py): the API's parameter names and the components'
ranges must say what the declaration says, and the callbacks' public parameters must not move."""

from __future__ import annotations

import pytest

from playground.core.errors import PlaygroundError
from playground.core.knobs import KNOBS, SEED, TEMPERATURE, TOP_K

# The language endpoints' parameters, in order: what gradio_client callers, deep links and lessons.toml use.
SAMPLING = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty"]
CONTRACT = {
    "/next_token": ["model", "prompt", "use_chat_template", *SAMPLING],
    "/generate_steps": ["model", "prompt", "use_chat_template", *SAMPLING, "seed", "tokens"],
    "/step_one_token": ["model", "prompt", "use_chat_template", *SAMPLING, "seed"],
    "/sweep": ["model", "prompt", "use_chat_template", *SAMPLING[1:], "temperatures", "samples", "tokens", "seed"],
    "/compare_search": ["model", "prompt", "use_chat_template", "beams", "tokens"],
    "/run_few_shot": ["model", "instruction", "input_name", "output_name", "chat_template", "examples", "query",
                      "answer", "labels", "k", "order", "seed", "temperature", "max_new_tokens"],
    "/cot_compare": ["model", "question", "reference", "modes", "use_chat_template", "max_new_tokens", "exemplars",
                     "samples", *SAMPLING, "seed"],
    "/cot_accuracy": ["model", "first_problem", "problems", "batch_size", "modes", "use_chat_template",
                      "max_new_tokens", "exemplars", "samples", *SAMPLING, "seed"],
}


def endpoint_inputs(client) -> dict[str, list[tuple[str, dict]]]:
    """API name -> (parameter name, the input component's config) for every public endpoint."""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    components = {component["id"]: component for component in client.config["components"]}
    inputs = {}
    for dependency in client.config["dependencies"]:
        name = f"/{dependency.get('api_name')}"
        if name in api:
            names = [parameter["parameter_name"] for parameter in api[name]["parameters"]]
            inputs[name] = list(zip(names, (components[i] for i in dependency["inputs"])))
    return inputs


def test_language_endpoints_keep_their_public_parameter_names(client):
    inputs = endpoint_inputs(client)
    for endpoint, names in CONTRACT.items():
        assert [name for name, _ in inputs[endpoint]] == names, endpoint


def test_every_knob_parameter_has_the_declared_range(client):
    checked = set()
    inputs = endpoint_inputs(client)
    for endpoint in CONTRACT:  # the language tabs (text-to-image's seed also takes -1: a random seed)
        for name, component in inputs[endpoint]:
            knob = KNOBS.get(name)
            if knob is None:
                continue
            props = component["props"]
            assert (props.get("minimum"), props.get("maximum")) == (knob.minimum, knob.maximum), (endpoint, name)
            if component["type"] == "slider":
                assert props["step"] == knob.step, (endpoint, name)
            checked.add(name)
    assert checked == set(KNOBS)  # a renamed knob or parameter leaves one unmatched


@pytest.mark.parametrize("knob, value, message", [
    (TEMPERATURE, TEMPERATURE.maximum + 0.01, "between 0 and 3"), (TOP_K, 2.5, "whole number"),
    (SEED, -1, "between 0 and"), (SEED, float("nan"), "between"), (TEMPERATURE, "hot", "must be a number"),
])
def test_a_knob_refuses_values_outside_its_declaration(knob, value, message):
    with pytest.raises(PlaygroundError, match=message):
        knob.check(value)

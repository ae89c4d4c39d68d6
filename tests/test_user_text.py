"""Text a visitor sends: a lone surrogate is replaced once, where the queue admits a request, and reported;
a NaN cell is an empty cell; text echoed into Markdown shows as typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from PIL import Image

from playground.core.errors import PlaygroundError
from playground.core.settings import Limits
from playground.core.user_text import REPLACEMENT, cell_text, markdown_text, replace_invalid
from playground.language.few_shot.request import examples_from_rows
from tests.hostile import base_arguments, default_arguments, endpoints, queue_call, raw_arguments

NAN = float("nan")


def test_lone_surrogates_are_replaced_wherever_they_sit():
    table = {"headers": ["language", "text"], "data": [["Eng\ud800lish", 1.5, None], ("\udfff\ud800",)]}
    cleaned, count = replace_invalid([table, "ok"])
    assert count == 3
    assert cleaned == [{"headers": ["language", "text"], "data": [["Eng\ufffdlish", 1.5, None], ("\ufffd\ufffd",)]},
                       "ok"]
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")  # what failed before: the reply could not be encoded
    valid = "NUL \x00, a pair 😀, an accent é, a noncharacter \ufffe"
    assert replace_invalid(valid) == (valid, 0)  # valid code points are the visitor's text: kept


def test_echoed_text_renders_as_typed_in_markdown():
    typed = "<img src=//evil.invalid/t.png> ![x](//evil.invalid/x.png) [login](//evil.invalid) **b** c&#97;t _i_"
    rendered = MarkdownIt().render(f"Best: **{markdown_text(typed)}**")
    assert "<img" not in rendered and "<a" not in rendered and "<em>" not in rendered
    assert rendered == f"<p>Best: <strong>{typed.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}" \
                       "</strong></p>\n"


def test_a_nan_cell_is_an_empty_cell():
    assert [cell_text(c) for c in (NAN, None, "x", 3)] == ["", "", "x", "3"]
    examples = examples_from_rows([[NAN, NAN], ["good", "Positive"], [None, NAN]], Limits())
    assert [(e.input, e.output) for e in examples] == [("good", "Positive")]
    with pytest.raises(PlaygroundError, match="has no output"):  # not the text "nan"
        examples_from_rows([["good", NAN]], Limits())


def test_a_nan_row_in_the_examples_leaves_the_prompt_unchanged(client, app_url):
    arguments = default_arguments(client, "/build_prompt")
    clean = queue_call(app_url, "/build_prompt", list(arguments.values()))[-1]["output"]["data"][0]
    arguments["examples"] = {**arguments["examples"], "data": [[NAN, NAN], *arguments["examples"]["data"], [NAN, NAN]]}
    with_nan = queue_call(app_url, "/build_prompt", list(arguments.values()))  # NaN goes raw, as pandas sends it
    assert with_nan[-1]["success"] and with_nan[-1]["output"]["data"][0] == clean
    assert "nan" not in clean.lower()


# Each endpoint that failed on a lone surrogate ("\ud800" in the JSON), the text it went into, and cheap settings.
SURROGATE_CASES = {
    "/next_token": {"prompt": "The capital of France is\ud800"},
    "/step_one_token": {"prompt": "The capital of France is\ud800"},
    "/build_prompt": {"query": "The soup was \ud800 cold."},
    "/cot_compare": {"question": "What is 2 + 2?\ud800", "modes": ["Direct answer"]},
    "/generate": {"prompt": "a lighthouse\ud800"},
    "/count_tokens": {"sentences": {"headers": ["language", "text"], "data": [["English", "Hello\ud800"]]},
                      "tokenizers": ["GPT-2 (gpt2)"]},
    "/classify": {"labels": "a cat\na dog\ud800"},
    "/load_task": {"task_id": "\ud800"},
}


@pytest.fixture(scope="module")
def small_image(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("image") / "small.png"
    Image.new("RGB", (32, 32), "teal").save(path)
    return path


@pytest.mark.parametrize("api_name", SURROGATE_CASES)
def test_a_lone_surrogate_is_replaced_and_reported(client, app_url, small_image, api_name):
    parameters = endpoints(client)[api_name]["parameters"]
    arguments = base_arguments(parameters, small_image, SURROGATE_CASES[api_name])
    messages = queue_call(app_url, api_name, raw_arguments(app_url, parameters, arguments, small_image))
    notes = [m["log"] for m in messages if m.get("msg") == "log"]
    assert f"1 character of your input could not be read (invalid Unicode: a lone surrogate) and was replaced by " \
           f"{REPLACEMENT}." in notes
    result = messages[-1]
    if api_name == "/load_task":  # Gradio's own check quotes the value: now it can be sent
        assert not result["success"]
        assert f"Value: {REPLACEMENT} is not in the list of choices" in result["output"]["error"]
        return
    assert result["success"], result["output"]
    if api_name == "/build_prompt":
        assert f"The soup was {REPLACEMENT} cold." in result["output"]["data"][0]

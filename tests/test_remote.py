"""The language tabs against a real OpenAI-compatible server: llama.cpp's, serving the offline SmolLM2
GGUF on 127.0.0.1 (installed by scripts/test-assets.sh). Nothing here is mocked: the hung server and
the flaky relay are real sockets, the relay passing real answers through."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from fractions import Fraction

import pytest
import torch
from gradio_client import Client

from playground.core.errors import PlaygroundError
from playground.core.registry import SMOLLM2_SOURCE, Registry
from playground.core.service import ModelService
from playground.core.settings import Settings, load_settings
from playground.language.chain_of_thought import answering, gsm8k, prompts
from playground.language.few_shot.prompts import AS_GIVEN
from playground.language.few_shot.request import FewShotRequest
from playground.language.few_shot.run import run_few_shot
from playground.language.few_shot.sweep import sweep
from playground.language.few_shot.tasks import LABELS, Example, PromptFormat
from playground.language.best_of_n import SCORES, BestOfN
from playground.language.constraints import parse_constraint
from playground.language.sampling_settings import SamplingSettings
from playground.language.remote.endpoint import RemoteEndpoint
from playground.language.remote.openai_api import RemoteServerError
from playground.language.remote.operations import next_top_tokens, remote_stages
from playground.language.sampling import last_logits
from tests.conftest import free_port, launched_app
from tests.hostile import default_arguments, first_rows, fuzz_endpoints
from tests.inference_servers import FlakyRelay, LlamaServer, SilentServer, remote_source

LOCAL = "SmolLM2-135M-Instruct (offline demo)"
PROMPTS = ["The capital of France is", "Once upon a time, there was a", "I love", "Water boils at",
           "The meaning of life is", "My favourite colour is"]
# SmolLM2's weights are the same Q4_1 numbers on both sides (the local model is that GGUF dequantised);
# llama.cpp multiplies in quantised arithmetic (activations rounded to 8 bits), transformers in float32.
# Measured over these prompts: at most 0.029 apart on any top-10 token, top-1 always the same.
PROBABILITY_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("llama") / "server.log")
    yield server
    server.stop()


def settings_with(base: Settings, *sources: str, **limits: int) -> Settings:
    return load_settings(overrides={"cache_dir": str(base.cache_dir), "models": {"language": [*sources, SMOLLM2_SOURCE]},
                                    "limits": limits}, environ={})


@pytest.fixture(scope="module")
def remote_service(base_settings: Settings, llama_server: LlamaServer) -> ModelService:
    sources = (remote_source(llama_server.base_url), remote_source(llama_server.base_url, server="tgi"))
    return ModelService(settings_with(base_settings, *sources))


@pytest.fixture(scope="module")
def remote(remote_service: ModelService):
    return remote_service.load("language")


@pytest.fixture(scope="module")
def local(remote_service: ModelService):
    return remote_service.load("language", LOCAL)


@pytest.fixture(scope="module")
def remote_app_url(remote_service: ModelService):
    with launched_app(remote_service) as url:
        yield url


@pytest.fixture(scope="module")
def remote_client(remote_app_url: str) -> Client:
    return Client(remote_app_url, verbose=False)


def names(service: ModelService) -> list[str]:
    return service.registry.names("language")


# ---- the registry ------------------------------------------------------------------------------------

def test_remote_source_is_parsed_and_named_without_touching_the_network():
    endpoint = RemoteEndpoint.parse("openai+https://gpu.example:8000/v1/?model=Qwen/Qwen2.5-7B-Instruct&server=vllm")
    assert (endpoint.base_url, endpoint.model, endpoint.server, endpoint.tokenizer) == (
        "https://gpu.example:8000/v1", "Qwen/Qwen2.5-7B-Instruct", "vllm", "Qwen/Qwen2.5-7B-Instruct")
    registry = Registry.from_settings(load_settings(overrides={"models": {"language": [
        "openai+https://gpu.example:8000/v1?model=Qwen/Qwen2.5-7B-Instruct&server=vllm"]}}, environ={}))
    spec = registry.get("language", None)
    assert spec.name == "Qwen/Qwen2.5-7B-Instruct @ gpu.example:8000 (vllm)"
    assert spec.is_remote and not spec.is_local_path
    assert not any("gpu.example" in name for name in registry.names("tokenizer"))


@pytest.mark.parametrize("source, message", [
    ("openai+ftp://host/v1?model=m", "looks like"),
    ("openai+http://host:8000/v1", r"needs \?model="),
    ("openai+http://host:8000/v1?model=m&server=ollama", "Unknown server 'ollama'"),
    ("openai+http://host:8000/v1?model=m&temperature=2", "Unknown remote model setting 'temperature'"),
    ("openai+http://host:8000/v1?model=m&context=lots", "context must be a whole number"),
])
def test_bad_remote_sources_are_refused_with_the_reason(source: str, message: str):
    with pytest.raises(PlaygroundError, match=message):
        RemoteEndpoint.parse(source)


# ---- the next token -------------------------------------------------------------------------------------

def test_remote_top_tokens_agree_with_local_transformers(remote, local):
    for prompt in PROMPTS:
        top = next_top_tokens(remote, prompt)
        assert len(top.tokens) >= remote.top_logprobs and 0 < top.returned_mass <= 1.0
        ids = local.tokenizer(prompt, return_tensors="pt").input_ids
        local_probs = torch.softmax(last_logits(local, ids)[0][0].float(), dim=-1)
        assert local.tokenizer.decode([int(local_probs.argmax())]) == top.tokens[0], prompt
        compared = 0
        for token, logprob in zip(top.tokens[:10], top.logprobs[:10].tolist()):
            token_ids = local.tokenizer(token, add_special_tokens=False).input_ids
            if len(token_ids) == 1:  # a piece that re-encodes to one id is that id
                assert abs(float(local_probs[token_ids[0]]) - math.exp(logprob)) < PROBABILITY_TOLERANCE, (prompt, token)
                compared += 1
        assert compared >= 8


def test_chain_over_the_top_n_follows_llama_cpp_order_with_temperature_last(remote):
    top = next_top_tokens(remote, PROMPTS[0])
    stages = remote_stages(remote, top, SamplingSettings(temperature=0.5, top_k=3, top_p=1.0))
    assert [stage.name for stage in stages] == ["raw", "repetition penalty", "top-k", "top-p", "min-p", "temperature"]
    expected = torch.softmax(top.logprobs[:3] / 0.5, dim=0)  # the three kept, then sharpened
    assert stages[-1].survivors == 3
    assert torch.allclose(stages[-1].probs[:3], expected, atol=1e-6)


def test_next_token_over_the_api_says_the_server_returns_only_the_top_n(remote_service, remote_client):
    chart, table, _ = remote_client.predict(names(remote_service)[0], "The capital of France is", False, 0.8, 5, 0.9, 0.0,
                                            1.0, api_name="/next_token")
    assert "returned only its top 20 next tokens" in chart
    assert "top-p → min-p → temperature" in chart  # the server's order (llama.cpp: temperature last) is stated
    rows = table["data"]
    assert [row[0] for row in rows] == ["raw", "top-k", "top-p", "min-p", "temperature"]
    assert rows[0][5] == "␣Paris" and rows[1][2] == 5


def test_the_browser_shows_what_a_top_n_chart_leaves_out(browser_context, remote_app_url):
    from playwright.sync_api import expect

    page = browser_context.new_page()
    try:
        page.goto(remote_app_url)
        page.get_by_role("tab", name="Sampling knobs").click()
        page.get_by_role("button", name="Show the next-token distribution").click()
        notice = page.locator("#sampling-remote-notice")
        expect(notice).to_contain_text("returned only its top 20 next tokens", timeout=60_000)
        expect(notice).to_contain_text("min-p → temperature")  # llama.cpp's own order
        chart = page.locator("#sampling-stage-chart")
        expect(chart).to_contain_text("all the tokens the server did not return")
        expect(chart).to_contain_text("␣Paris")
    finally:
        page.close()


def test_a_knob_the_server_lacks_gets_a_clear_message(remote_service, remote_client):
    tgi = names(remote_service)[1]
    assert tgi.endswith("(tgi)")
    with pytest.raises(Exception, match="takes no top-k"):
        remote_client.predict(tgi, "The capital of France is", False, 0.8, 5, 1.0, 0.0, 1.0, api_name="/next_token")
    chart, _, _ = remote_client.predict(tgi, "The capital of France is", False, 0.8, 0, 0.9, 0.0, 1.0,
                                        api_name="/next_token")
    assert "Hugging Face TGI returned only its top" in chart


# ---- generation --------------------------------------------------------------------------------------------

def test_step_by_step_over_the_api_continues_the_same_text(remote_service, remote_client):
    model = names(remote_service)[0]
    args = (model, "The capital of France is", False, 0.0, 0, 1.0, 0.0, 1.0, 0)
    html, table = remote_client.predict(*args, 3, api_name="/generate_steps")
    assert len(table["data"]) == 3 and "sampling-steps" in html
    assert table["data"][0][1] == "␣Paris" and 0.5 < table["data"][0][2] <= 1


def test_temperature_sweep_over_remote_repeats_with_its_seed(remote_service, remote_client):
    model = names(remote_service)[0]
    args = (model, "Once upon a time", False, 0, 1.0, 0.0, 1.0, "0, 1.5", 4, 12, 7)
    first, diversity = remote_client.predict(*args, api_name="/sweep")
    again, _ = remote_client.predict(*args, api_name="/sweep")
    greedy = {row[1] for row in first["data"]}
    hot = {row[2] for row in first["data"]}
    assert len(greedy) == 1 and len(hot) > 1
    assert first["data"] == again["data"]
    assert diversity["data"][0][2] == "not reported by a server"


def test_beam_search_over_remote_explains_why_not(remote_service, remote_client):
    with pytest.raises(Exception, match="Beam search is not part of the OpenAI API"):
        remote_client.predict(names(remote_service)[0], "Hello", False, 3, 8, api_name="/compare_search")


# ---- inside the language model: the server's own structured output, best-of-N by its logprobs -------------

PERSON = ('{"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},'
          ' "required": ["name", "age"], "additionalProperties": false}')


@pytest.mark.parametrize("kind, spec", [("json_schema", PERSON), ("choice", "red\ngreen\nblue")])
def test_the_servers_structured_output_obeys_the_constraint_every_time(remote, kind, spec):
    constraint = parse_constraint(kind, spec, 8000)
    prompt = remote.render_prompt("Describe a person as a JSON object with a name and an age.", True)
    drawn = remote.sample_scored(prompt, SamplingSettings(1.0), 40, 6, 0, constraint)
    assert all(row.ended and constraint.validates(row.text) for row in drawn.rows), [r.text for r in drawn.rows]
    assert drawn.grammar_seconds is None  # the server masks: its time is not ours to split out


def test_structured_output_and_best_of_n_over_the_api(remote_service, remote_client):
    model = names(remote_service)[0]
    summary, chart, table = remote_client.predict(
        model=model, prompt="Pick a colour:", constraint_kind="choices", constraint="red\ngreen\nblue",
        constrained_samples=3, constrained_tokens=6, seed=0, api_name="/structured_output")
    assert "with the grammar 3 of 3" in summary and "grammar stage" in chart and "not part of the OpenAI API" in chart
    with pytest.raises(Exception, match="GBNF, not regular expressions"):
        remote_client.predict(model=model, constraint_kind="regular expression", constraint="[0-9]+",
                              api_name="/structured_output")
    with pytest.raises(Exception, match="logit lens .* is not part of the OpenAI API"):
        remote_client.predict(model=model, api_name="/logit_lens")


def test_best_of_n_over_a_server_scores_by_its_logprobs_and_repeats(remote):
    prompt = remote.render_prompt("Write a one-line slogan for a bakery.", True)
    drawn = remote.sample_scored(prompt, SamplingSettings(1.0), 12, 4, 3)
    result = BestOfN(drawn)
    assert all(row.log_prob < 0 and row.tokens > 0 for row in drawn.rows)
    for by in SCORES:
        scores = [result.score(c, by) for c in result.candidates]
        assert result.chosen(by) == scores.index(max(scores))
    again = remote.sample_scored(prompt, SamplingSettings(1.0), 12, 4, 3)
    assert [r.text for r in again.rows] == [r.text for r in drawn.rows]
    assert [r.log_prob for r in again.rows] == pytest.approx([r.log_prob for r in drawn.rows], abs=1e-4)
    # Each score is the sum of what the server reports for the tokens it drew.
    completion = remote.complete(prompt.text, 12, SamplingSettings(1.0), seed=3, logprobs=1)
    assert drawn.rows[0].log_prob == pytest.approx(sum(completion.token_logprobs), abs=1e-4)


# ---- few-shot and chain of thought ------------------------------------------------------------------------

SENTIMENT = FewShotRequest(
    PromptFormat("Classify the sentiment.", "Review", "Sentiment", False),
    (Example("I loved every minute.", "positive"), Example("A dull, tedious mess.", "negative")),
    "The best film I have seen this year.", LABELS, ("positive", "negative"), 2, AS_GIVEN, 0,
)


def test_few_shot_label_probabilities_from_top_logprobs_match_local(remote, local, remote_service):
    limits = remote_service.settings.limits
    greedy = SamplingSettings(temperature=0)
    over_server = run_few_shot(remote, SENTIMENT, greedy, 4, limits)
    here = run_few_shot(local, SENTIMENT, greedy, 4, limits)
    assert over_server.prompt.text == here.prompt.text
    assert over_server.answer == here.answer
    assert max(over_server.probabilities, key=over_server.probabilities.get) == "positive"
    for label in SENTIMENT.labels:
        assert abs(over_server.probabilities[label] - here.probabilities[label]) < PROBABILITY_TOLERANCE


def test_a_label_outside_the_servers_top_n_is_flagged_as_an_estimate(remote, remote_service, remote_client):
    request = replace(SENTIMENT, labels=("positive", "negative", "xylophone"))
    result = run_few_shot(remote, request, SamplingSettings(temperature=0), 1, remote_service.settings.limits)
    assert result.bounded_labels == ("xylophone",)
    assert result.probabilities["xylophone"] < 0.05

    form = default_arguments(remote_client, "/run_few_shot")
    form.update(model=names(remote_service)[0], labels=form["labels"] + ", xylophone", max_new_tokens=1)
    _, summary, _, _ = remote_client.predict(**form, api_name="/run_few_shot")
    assert "estimates** for xylophone" in summary and "top 20" in summary


def test_the_browser_flags_estimated_labels_and_explains_an_empty_query(browser_context, remote_app_url):
    from playwright.sync_api import expect

    page = browser_context.new_page()
    try:
        page.goto(remote_app_url)
        page.get_by_role("tab", name="Few-shot builder").click()
        labels = page.get_by_label("Labels (comma-separated; new example outputs are added)")
        labels.fill(labels.input_value() + ", xylophone")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#few-shot-tokens")).to_contain_text("Label probabilities are estimates for xylophone",
                                                                 timeout=60_000)
        expect(page.locator("#few-shot-probabilities")).to_contain_text("xylophone")
        page.get_by_label("Query").fill("")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.get_by_text("The query is empty: type something first.")).to_be_visible()
    finally:
        page.close()


def test_few_shot_sweep_over_remote_scores_every_setting(remote, remote_service):
    eval_set = [Example("Terrible acting.", "negative"), Example("Wonderful and warm.", "positive")]
    results = list(sweep(remote, SENTIMENT, eval_set, remote_service.settings.limits))
    assert len(results) == len({r.setting for r in results}) * 2
    assert all(r.expected_probability is not None and 0 <= r.expected_probability <= 1 for r in results)


def test_chain_of_thought_over_remote_gives_scored_answers(remote, remote_service):
    settings = prompts.CotSettings(max_new_tokens=48, use_chat_template=True, exemplars=1, samples=3,
                               sampling=SamplingSettings(temperature=0.7)).validated(remote_service.settings.limits)
    problem = gsm8k.custom_problem("Tom has 3 apples and buys 4 more. How many apples does he have?", "7",
                                 remote_service.settings.limits)
    streamed = list(answering.stream_mode(remote, prompts.ZERO_SHOT, problem, settings))
    direct = list(answering.stream_mode(remote, prompts.DIRECT, problem, settings))[-1]
    voted = list(answering.stream_mode(remote, prompts.SELF_CONSISTENCY, problem, settings))[-1]
    assert len(streamed) > 3 and not streamed[0].finished and streamed[-1].finished  # text arrives as written
    prompt = prompts.build_cot_prompt(remote, prompts.ZERO_SHOT, problem.question, settings)
    whole = answering.mode_batch(remote, [prompt], prompts.ZERO_SHOT, settings)
    assert streamed[-1].texts[0].endswith(whole.rows[0].text.strip())  # greedy: streamed or whole, the same text
    assert direct.finished and direct.reference == Fraction(7) and direct.new_tokens > 0
    assert len(voted.texts) == 3 and sum(count for _, count in voted.votes()) == 3


def test_cot_accuracy_over_the_api(remote_service, remote_client):
    summary, _, table, _ = remote_client.predict(
        names(remote_service)[0], 1, 2, 4, [prompts.DIRECT], True, 32, 1, 2, 0.7, 0, 1.0, 0.0, 1.0, 0,
        api_name="/cot_accuracy")
    assert len(table["data"]) == 2 and "2" in summary


# ---- a room typing nonsense -----------------------------------------------------------------------------

LANGUAGE_ENDPOINTS = {"/next_token", "/generate_steps", "/step_one_token", "/sweep", "/compare_search",
                      "/build_prompt", "/run_few_shot", "/sweep_shots", "/cot_compare", "/cot_accuracy",
                      "/structured_output", "/best_of_n", "/sampler_order", "/logit_lens", "/force_token"}


def test_language_endpoints_over_a_server_survive_hostile_input(remote_client, remote_app_url, tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "small.png"
    Image.new("RGB", (8, 8)).save(image)
    defaults = default_arguments(remote_client, "/sweep_shots")
    valid = {
        # One example, one held-out item, one GSM8K problem: a default sweep scores 80 prompts, 35 s a call.
        "examples": first_rows(defaults["examples"], 1), "held_out": first_rows(defaults["held_out"], 1), "count": 1,
        # Penalty 1, not the slider's cheapest 0.5: below 1, llama-cpp-python can loop past max_tokens on the
        # Arabic text to the end of its context (40 s a request; see README). The penalty itself is still fuzzed.
        "repetition_penalty": 1.0,
        # Issue 19's views: two short samples a call (the server draws them; the fuzz is about the input).
        "constrained_samples": 1, "constrained_tokens": 4, "candidates": 2, "candidate_tokens": 4,
    }
    start = time.perf_counter()
    results, unhandled, seconds = fuzz_endpoints(remote_client, remote_app_url, [image], image, LANGUAGE_ENDPOINTS,
                                                 valid)
    with capsys.disabled():
        print(f"\nremote fuzz: {sum(results.values())} hostile calls in {time.perf_counter() - start:.0f} s: "
              f"{dict(results)}; slowest (s): {dict(seconds.most_common(3))}")
    assert len(seconds) == len(LANGUAGE_ENDPOINTS) and results["message"] > 0
    assert unhandled == [], "\n".join(unhandled[:30])


# ---- a server that is down, hung or flaky ------------------------------------------------------------------

def test_a_server_that_is_down_gets_a_message_and_the_app_keeps_serving(base_settings):
    down = remote_source(f"http://127.0.0.1:{free_port()}/v1")
    service = ModelService(settings_with(base_settings, down, remote_retries=1))
    with launched_app(service) as url:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match=r"Could not reach the inference server .* \(tried 2 times\)"):
            client.predict(names(service)[0], "Hello", False, 1.0, 0, 1.0, 0.0, 1.0, api_name="/next_token")
        chart, _, _ = client.predict(LOCAL, "Hello", False, 1.0, 0, 1.0, 0.0, 1.0, api_name="/next_token")
        assert "sampling-stage-chart" in chart


def test_a_hung_server_times_out_after_the_retries(base_settings):
    silent = SilentServer()
    try:
        service = ModelService(settings_with(base_settings, remote_source(silent.base_url), remote_timeout_seconds=1,
                                             remote_retries=1))
        start = time.perf_counter()
        with pytest.raises(RemoteServerError, match=r"did not answer within 1 s \(tried 2 times\)"):
            service.load("language")
        assert time.perf_counter() - start < 6  # two 1-second waits and a 0.5 s backoff, not a hang
    finally:
        silent.stop()


def test_retries_ride_out_a_server_that_is_warming_up(base_settings, llama_server):
    relay = FlakyRelay(llama_server.base_url, failures=2)
    try:
        service = ModelService(settings_with(base_settings, remote_source(relay.base_url), remote_retries=2))
        lm = service.load("language")
        top = next_top_tokens(lm, "The capital of France is")
        assert top.tokens[0] == " Paris" and relay.requests == 4  # 2 refused + /models + the completion
        relay.failures_left = 2
        streamed = "".join(lm.stream_text("The capital of France is", 3, SamplingSettings(temperature=0)))
        assert streamed.startswith(" Paris") and relay.requests == 7
    finally:
        relay.stop()


def test_a_request_that_breaks_the_server_is_not_retried(base_settings, llama_server):
    relay = FlakyRelay(llama_server.base_url, failures=1, status=500, message="llama_decode returned 1")
    try:
        service = ModelService(settings_with(base_settings, remote_source(relay.base_url), remote_retries=2))
        with pytest.raises(RemoteServerError, match=r"failed on this request \(HTTP 500: llama_decode returned 1\)"):
            service.load("language")
        assert relay.requests == 1
        assert next_top_tokens(service.load("language"), "The capital of France is").tokens[0] == " Paris"
    finally:
        relay.stop()


def test_remote_requests_do_not_wait_for_a_busy_local_model(remote_service, remote_client):
    """A local model's batcher runs one batch or turn at a time; a request for the server passes it by."""
    with remote_service.language("SmolLM2-135M-Instruct (offline demo)").batcher.turn():  # as if the local model were busy with someone's request
        job = remote_client.submit(names(remote_service)[0], "I love", False, 0.0, 0, 1.0, 0.0, 1.0,
                                   api_name="/next_token")
        chart, _, _ = job.result(timeout=60)
    assert "returned only its top" in chart

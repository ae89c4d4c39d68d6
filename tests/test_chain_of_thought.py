"""CoT compare: prompts, the four modes on real (tiny and small) models, batches, the API and the page."""

from __future__ import annotations

import csv
import re
from fractions import Fraction

import pytest
from playwright.sync_api import expect

from playground.core.errors import PlaygroundError
from playground.language.chain_of_thought import answering, evaluation, gsm8k, prompts
from playground.language.answers import format_number
from playground.language.batches import generate_batch
from playground.language.sampling_settings import SamplingSettings
from playground.views.chain_of_thought import outcomes_csv, shown_text, verdict

SMOLLM2 = "SmolLM2-135M-Instruct (offline demo)"
ROGER = "Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. How many tennis balls does he have now?"


@pytest.fixture(scope="module")
def tiny(service):
    return service.load("language")


@pytest.fixture(scope="module")
def smollm2(service):
    return service.load("language", SMOLLM2)


def fast(**changes) -> prompts.CotSettings:
    return prompts.CotSettings(**{"max_new_tokens": 12, "exemplars": 2, "samples": 3, **changes})


def run(lm, mode, problem, settings) -> list[answering.ModeResult]:
    return list(answering.stream_mode(lm, mode, problem, settings))


# --- data and prompts -----------------------------------------------------------------------------

def test_ships_the_gsm8k_test_set_and_eight_worked_exemplars():
    assert len(gsm8k.gsm8k_test()) == 1319 and len(gsm8k.gsm8k_exemplars()) == 8
    assert gsm8k.gsm8k_problem(1).reference == 18
    assert (gsm8k.GSM8K_DIR / "LICENSE").read_text().startswith("MIT License")


def test_worked_solutions_drop_calculator_notes_and_end_with_the_answer_marker():
    solution = gsm8k.worked_solution("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72")
    assert solution == "Natalia sold 48/2 = 24 clips in May.\nThe answer is 72."


@pytest.mark.parametrize("number", [0, 1320, 2.5, float("nan"), "3", True])
def test_problem_numbers_outside_the_test_set_are_refused(number):
    with pytest.raises(PlaygroundError, match="GSM8K test problem number must be a whole number"):
        gsm8k.gsm8k_problem(number)


def test_plain_prompts_show_the_strategy_each_mode_names(tiny):
    settings = fast(use_chat_template=False)
    direct = prompts.build_cot_prompt(tiny, prompts.DIRECT, ROGER, settings)
    zero = prompts.build_cot_prompt(tiny, prompts.ZERO_SHOT, ROGER, settings)
    few = prompts.build_cot_prompt(tiny, prompts.FEW_SHOT, ROGER, settings)
    assert direct.text == f"Q: {ROGER}\nA: The answer is" and direct.stop_strings == ("\n",)
    assert zero.text.endswith("A: Let's think step by step.")
    assert few.text.count("Q: ") == 3 and few.text.count("The answer is") == 2 and "<<" not in few.text
    assert few.text.startswith(f"Q: {gsm8k.gsm8k_exemplars()[0].question}")


def test_chat_prompts_give_each_worked_example_its_own_turns(tiny):
    few = prompts.build_cot_prompt(tiny, prompts.FEW_SHOT, ROGER, fast(exemplars=3))
    assert few.text.count("<|im_start|>assistant") == 4  # three worked answers, then the model's turn
    zero = prompts.build_cot_prompt(tiny, prompts.ZERO_SHOT, ROGER, fast())
    assert zero.text.endswith("<|im_start|>assistant\nLet's think step by step.")


def test_a_prompt_longer_than_the_model_reads_is_refused_with_what_to_change(tiny):
    with pytest.raises(PlaygroundError, match="fewer worked examples or fewer new tokens"):
        prompts.prompt_token_ids(tiny, prompts.build_cot_prompt(tiny, prompts.FEW_SHOT, ROGER, fast(exemplars=8)),
                             fast(exemplars=8, max_new_tokens=256))


@pytest.mark.parametrize("changes, message", [
    ({"samples": 1}, "self-consistency samples"),
    ({"exemplars": 9}, "worked examples"),
    ({"seed": float("nan")}, "seed"),
    ({"max_new_tokens": 10_000}, "New tokens"),
    ({"sampling": SamplingSettings(temperature=0)}, "Self-consistency needs temperature above 0"),
    ({"sampling": SamplingSettings(top_k=2.5)}, "top-k"),
    ({"sampling": SamplingSettings(top_p=float("inf"))}, "top-p"),
])
def test_bad_settings_are_refused_with_a_message(service, changes, message):
    with pytest.raises(PlaygroundError, match=message):
        fast(**changes).validated(service.settings.limits)


def test_greedy_only_modes_need_no_temperature(service):
    assert fast(sampling=SamplingSettings(temperature=0)).validated(service.settings.limits, [prompts.DIRECT])


@pytest.mark.parametrize("modes, message", [([], "at least one mode"), (["Tree of thought"], "Unknown mode")])
def test_modes_must_be_known(modes, message):
    with pytest.raises(PlaygroundError, match=message):
        prompts.check_modes(modes)


@pytest.mark.parametrize("question, reference, message", [
    ("   ", "3", "question is empty"), ("x" * 9_000, "3", "characters"), ("How many?", "lots", "reference answer"),
])
def test_a_typed_problem_needs_a_question_and_a_numeric_reference(service, question, reference, message):
    with pytest.raises(PlaygroundError, match=message):
        gsm8k.custom_problem(question, reference, service.settings.limits)


def test_majority_vote_ignores_answers_without_a_number_and_breaks_ties_by_order():
    assert answering.majority_vote([None, Fraction(3), Fraction(5), Fraction(5), None, None]) == 5
    assert answering.majority_vote([Fraction(7), Fraction(2), Fraction(2), Fraction(7)]) == 7
    assert answering.majority_vote([None, None]) is None


# --- modes on the tiny model ----------------------------------------------------------------------

def test_a_mode_streams_its_answer_then_scores_it(tiny):
    problem = gsm8k.Problem(ROGER, Fraction(11))
    results = run(tiny, prompts.ZERO_SHOT, problem, fast())
    assert len(results) > 2 and not results[0].finished and results[-1].finished
    final = results[-1]
    assert final.texts[0].startswith("Let's think step by step.")
    assert 1 <= final.new_tokens <= 12 and final.seconds > 0
    assert final.correct is (final.answer == 11)


def test_greedy_modes_repeat_exactly(tiny):
    problem = gsm8k.gsm8k_problem(2)
    for mode in (prompts.DIRECT, prompts.FEW_SHOT):
        first, second = run(tiny, mode, problem, fast())[-1], run(tiny, mode, problem, fast())[-1]
        assert first.texts == second.texts and first.new_tokens == second.new_tokens


def test_self_consistency_votes_k_seeded_samples(tiny):
    problem = gsm8k.Problem(ROGER, Fraction(11))
    result = run(tiny, prompts.SELF_CONSISTENCY, problem, fast(samples=4, seed=1))[-1]
    again = run(tiny, prompts.SELF_CONSISTENCY, problem, fast(samples=4, seed=1))[-1]
    other_seed = run(tiny, prompts.SELF_CONSISTENCY, problem, fast(samples=4, seed=2))[-1]
    assert len(result.texts) == 4 and sum(count for _, count in result.votes()) == 4
    assert len(set(result.texts)) > 1  # sampled, not greedy
    assert result.answer == answering.majority_vote(result.answers)
    assert again.texts == result.texts and other_seed.texts != result.texts
    assert "votes:" in verdict(result) and "── sample 4" in shown_text(result)


def test_an_unscored_problem_says_so(tiny):
    result = run(tiny, prompts.DIRECT, gsm8k.Problem(ROGER, None), fast())[-1]
    assert result.correct is None and "not scored" in verdict(result)


def test_evaluation_fills_every_problem_and_mode_and_writes_a_csv(tiny, service):
    limits = service.settings.limits
    modes = (prompts.DIRECT, prompts.SELF_CONSISTENCY)
    states = list(evaluation.evaluate(tiny, gsm8k.check_problem_range(5, 3, limits), modes, fast(samples=2), 2, limits))
    assert [s.steps_done for s in states] == list(range(1, states[-1].steps_total + 1))
    outcomes = states[-1].outcomes
    assert [o.number for o in outcomes] == [5, 6, 7] and all(set(o.results) == set(modes) for o in outcomes)
    summary = evaluation.accuracy_by_mode(outcomes, modes)
    assert [a.scored for a in summary] == [3, 3]
    assert summary[0].correct == sum(o.results[prompts.DIRECT].answer == o.problem.reference for o in outcomes)
    rows = list(csv.DictReader(outcomes_csv(outcomes, modes).splitlines()))
    assert [row["problem"] for row in rows] == ["5", "6", "7"]
    assert rows[0]["reference"] == format_number(gsm8k.gsm8k_problem(5).reference)
    assert {"Self-consistency: answer", "Self-consistency: correct", "Direct answer: tokens"} <= set(rows[0])


def test_evaluation_range_is_capped_by_the_limits(service):
    limits = service.settings.limits
    with pytest.raises(PlaygroundError, match=f"from 1 to {limits.max_batch_items}"):
        gsm8k.check_problem_range(1, limits.max_batch_items + 1, limits)
    with pytest.raises(PlaygroundError, match="at most 2 remain"):
        gsm8k.check_problem_range(1318, 5, limits)


# --- the real SmolLM2 -----------------------------------------------------------------------------

def test_smollm2_answers_directly_with_a_number_it_stops_at_the_line_end(smollm2):
    problem = gsm8k.gsm8k_problem(1)
    result = run(smollm2, prompts.DIRECT, problem, fast(use_chat_template=False, max_new_tokens=16))[-1]
    assert result.texts[0].startswith("The answer is") and "\n" not in result.texts[0]
    assert result.answer is not None and result.new_tokens < 16


def test_smollm2_chain_of_thought_costs_more_tokens_than_a_direct_answer(smollm2):
    problem = gsm8k.gsm8k_problem(1)
    direct = run(smollm2, prompts.DIRECT, problem, fast(max_new_tokens=24))[-1]
    thought = run(smollm2, prompts.ZERO_SHOT, problem, fast(max_new_tokens=24))[-1]
    assert direct.answer is not None and direct.new_tokens < thought.new_tokens == 24


def test_smollm2_batched_greedy_answers_match_one_at_a_time(smollm2):
    """Left padding must not change what the model writes: the batch is only faster."""
    settings = fast(max_new_tokens=6)
    questions = [gsm8k.gsm8k_problem(n).question for n in (1, 3)]
    ids_list = [prompts.prompt_token_ids(smollm2, prompts.build_cot_prompt(smollm2, prompts.ZERO_SHOT, question,
                                                                           settings), settings) for question in questions]
    assert len(ids_list[0]) != len(ids_list[1])  # so one of them is padded
    greedy = SamplingSettings(temperature=0)
    batched = generate_batch(smollm2, ids_list, greedy, 6)
    alone = [generate_batch(smollm2, [ids], greedy, 6).rows[0] for ids in ids_list]
    assert [row.text for row in batched.rows] == [row.text for row in alone]
    assert [row.new_tokens for row in batched.rows] == [row.new_tokens for row in alone]


# --- API and page ---------------------------------------------------------------------------------

def test_api_loads_a_gsm8k_problem(client):
    question, reference = client.predict(3, api_name="/cot_problem")
    assert question == gsm8k.gsm8k_problem(3).question and reference == "70000"


def test_api_compares_two_modes_on_a_typed_problem(client):
    outputs = client.predict(question=ROGER, reference="11", modes=[prompts.DIRECT, prompts.SELF_CONSISTENCY],
                             max_new_tokens=6, samples=3, api_name="/cot_compare")
    verdicts, texts = outputs[:4], outputs[4:]
    assert re.search(r"(right|wrong) \(reference 11\) · [1-6] tokens", verdicts[0])
    assert verdicts[1] == verdicts[2] == "not run" and "votes:" in verdicts[3]
    assert texts[0].startswith("The answer is") and texts[3].count("── sample") == 3


@pytest.mark.parametrize("inputs, message", [
    ({"question": ""}, "question is empty"),
    ({"question": ROGER, "reference": "eleven"}, "reference answer must be one number"),
    ({"question": ROGER, "modes": []}, "at least one mode"),
    ({"question": ROGER, "model": "../../etc/passwd"}, "not in the list of choices"),
])
def test_api_refuses_bad_input_with_a_message(client, inputs, message):
    with pytest.raises(Exception, match=message):
        client.predict(**{"max_new_tokens": 4, **inputs}, api_name="/cot_compare")


def test_api_measures_accuracy_and_returns_a_csv(client):
    summary, chart, table, csv_path = client.predict(
        first_problem=10, problems=3, batch_size=2, modes=[prompts.DIRECT, prompts.ZERO_SHOT], max_new_tokens=4,
        api_name="/cot_accuracy",
    )
    assert summary.startswith("3 of 3 problems done")
    assert [row[0] for row in table["data"]] == [10, 11, 12]
    with open(csv_path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and "Zero-shot CoT: correct" in rows[0]


def test_page_runs_one_problem_in_two_modes_and_scores_both(page):
    page.get_by_role("tab", name="CoT compare").click()
    for mode in (prompts.FEW_SHOT, prompts.SELF_CONSISTENCY):
        page.get_by_label(mode, exact=True).uncheck()
    page.get_by_text("Generation settings").click()
    tokens = page.get_by_label("number input for Max new tokens per answer")
    tokens.fill("24")
    tokens.press("Enter")
    page.get_by_role("button", name="Compare").click()
    for index in (0, 1):
        verdict = page.locator(f"#cot-verdict-{index}")
        expect(verdict).to_contain_text(re.compile(r"(right|wrong) \(reference 18\) · \d+ tokens"), timeout=120_000)
    expect(page.locator("#cot-verdict-2")).to_contain_text("not run")


def test_page_shows_a_clear_message_for_an_empty_question(page):
    page.get_by_role("tab", name="CoT compare").click()
    page.get_by_label("Question (edit it, or type your own)").fill("")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_text("The question is empty").first).to_be_visible()

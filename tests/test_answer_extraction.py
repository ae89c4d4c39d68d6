"""Reading the final number from an answer: every GSM8K reference, and the forms models write."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import pytest

from playground.core.errors import PlaygroundError
from playground.language.answers import extract_answer, format_number, parse_reference
from playground.language.chain_of_thought.gsm8k import GSM8K_DIR, worked_solution


def gsm8k_test_rows() -> list[dict]:
    with open(GSM8K_DIR / "test.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def reference_value(solution: str) -> Fraction:
    """The '#### 1,234' value read independently of the extractor: commas dropped, exact."""
    return Fraction(solution.rpartition("####")[2].strip().replace(",", ""))


def test_every_gsm8k_test_reference_extracts_from_its_own_solution():
    rows = gsm8k_test_rows()
    assert len(rows) == 1319
    wrong = [row["answer"][-60:] for row in rows if extract_answer(row["answer"]).value != reference_value(row["answer"])]
    assert wrong == []


def test_every_gsm8k_test_reference_extracts_from_the_solution_as_models_are_shown_it():
    """Few-shot prompts show solutions without '<<..>>' and ending 'The answer is N.'; reading them back
    must give N, or the model is taught one format and scored on another."""
    wrong = [
        row["answer"][-60:] for row in gsm8k_test_rows()
        if extract_answer(worked_solution(row["answer"])).value != reference_value(row["answer"])
    ]
    assert wrong == []


def test_without_a_marker_the_last_number_of_most_solutions_is_the_answer():
    """Why 'last number' is the fallback: it is right for nearly all GSM8K worked solutions."""
    rows = gsm8k_test_rows()
    hits = sum(
        extract_answer(re.sub(r"<<[^>]*>>", "", row["answer"].rpartition("####")[0])).value == reference_value(row["answer"])
        for row in rows
    )
    assert hits / len(rows) > 0.95


@pytest.mark.parametrize("text, expected", [
    ("The answer is 11.", "11"),
    ("#### 11", "11"),
    ("So it costs $1,234.50 in total.", "1234.5"),
    ("He has 11 tennis balls", "11"),
    ("The temperature fell to -5 degrees", "-5"),
    ("The change is −7", "-7"),
    ("She ate 3/4 of the pie", "0.75"),
    ("It takes 2.5 hours.", "2.5"),
    ("The answer is 48 + 24 = 72.", "72"),  # working after the marker: the result counts
    ("The answer is: $18. Then 5 more apples appear.", "18"),  # marker beats a later number
    ("The answer is 6 apples, 2 more than 4", "6"),
    ("The final answer is \\boxed{18}", "18"),
    ("Answer: -3/4", "-0.75"),
    ("10-3=7", "7"),  # a minus between numbers is subtraction, not a sign
    ("1,2,3", "3"),  # a list, not a thousands separator
    ("He saved 1,000 dollars", "1000"),
    ("The answer is 5 and then the answer is 9.", "9"),  # the last marker wins
    ("The answer is unknown. I counted 4 cows.", "4"),  # a marker without a number falls back
    ("5 apples. 1/0 is undefined", "5"),  # x/0 is not a number
    ("The answer is .5", "0.5"),  # a decimal without its leading zero
    ("It costs $.50, so 3 of them", "3"),
    ("The answer is $.50.", "0.5"),
    ("version v.5", "—"),  # ".5" inside a word is not a number
    ("Answer: $\\frac{3}{4}$", "0.75"),  # LaTeX: the fraction, not its numerator
    ("The final answer is \\boxed{\\dfrac{7}{8}}", "0.875"),
    ("So x = -\\frac{1}{2}", "-0.5"),
    ("\\frac{3}{0} of 12", "12"),  # a zero denominator is not a number, nor are its digits
])
def test_extracts_the_final_number(text, expected):
    assert format_number(extract_answer(text).value) == expected


def test_text_without_a_number_or_with_a_runaway_digit_string_has_no_answer():
    assert extract_answer("I do not know").value is None
    assert extract_answer("1" * 40).value is None
    assert extract_answer("").how == "no number found"


def test_says_how_the_answer_was_found():
    assert extract_answer("so 12. The answer is 13").how == "after 'The answer is'"
    assert extract_answer("so 12 then 13").how == "last number"


@pytest.mark.parametrize("typed, expected", [("72", "72"), (" $1,234.50 ", "1234.5"), ("-3", "-3"), ("3/4", "0.75"),
                                             ("2.50", "2.5"), (18, "18")])
def test_reference_accepts_one_number(typed, expected):
    assert format_number(parse_reference(typed)) == expected


def test_an_empty_reference_means_not_scored():
    assert parse_reference("  ") is None and parse_reference(None) is None


@pytest.mark.parametrize("typed", ["eleven", "1e999", "nan", "inf", "3/0", "72 apples", "1" * 50, "1.5.2", True])
def test_reference_that_is_not_one_number_is_refused_with_a_message(typed):
    with pytest.raises(PlaygroundError, match="reference answer must be"):
        parse_reference(typed)


def test_numbers_are_shown_as_a_person_writes_them():
    assert [format_number(Fraction(n)) for n in ("72", "-3", "2.5", "1/3", "1/8")] == ["72", "-3", "2.5", "1/3", "0.125"]
    assert format_number(None) == "—"

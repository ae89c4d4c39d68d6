"""Structured output on the real SmolLM2: time per generated token with the grammar stage (llguidance's mask,
computed and applied every step) as a ratio to the same sampling without it. Goal: <= 1.3 on a CPU.

    .venv/bin/python -m bench.bench_grammar
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from bench.common import report
from playground.core.registry import SMOLLM2_SOURCE
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.language.generation import encode_prompt
from playground.language.constraints import parse_constraint
from playground.language.grammar import GrammarProcessor, matcher_for
from playground.language.sampling import end_token_ids
from playground.language.sampling_settings import SamplingSettings
from playground.language.samples import draw_samples

MODEL = "SmolLM2-135M-Instruct (offline demo)"
PROMPT = "Describe a person as a JSON object with a name, an age and a city."
SCHEMA = json.dumps({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                                                      "city": {"type": "string"}},
                     "required": ["name", "age", "city"], "additionalProperties": False})
KNOBS = SamplingSettings(temperature=0.8, top_p=0.95)
TOKENS, REPEATS = 32, 5


def main() -> None:
    service = ModelService(load_settings(overrides={"models": {"language": [SMOLLM2_SOURCE]}}))
    lm = service.load("language", MODEL)
    ids = encode_prompt(lm, PROMPT, True)
    constraint = parse_constraint("json_schema", SCHEMA, 8000)
    matcher = matcher_for(lm, constraint)  # builds the engine's tokenizer once, as the app does
    print(f"{MODEL} on {lm.device}, prompt of {ids.shape[1]} tokens, torch threads {torch.get_num_threads()}")

    for rows in (1, 8):  # one text, and the tab's eight samples at once (one matcher per row)
        free_times, constrained_times, mask_times = [], [], []
        for repeat in range(REPEATS + 1):  # the first round warms up; A and B alternate so load hits both
            start = time.perf_counter()
            free = draw_samples(lm, ids, KNOBS, rows, TOKENS, repeat)
            free_per_step = (time.perf_counter() - start) / free.steps
            grammar = GrammarProcessor([matcher.deep_copy() for _ in range(rows)], ids.shape[1], end_token_ids(lm))
            start = time.perf_counter()
            constrained = draw_samples(lm, ids, KNOBS, rows, TOKENS, repeat, grammar)
            constrained_per_step = (time.perf_counter() - start) / constrained.steps
            if repeat:
                free_times.append(free_per_step)
                constrained_times.append(constrained_per_step)
                mask_times.append(constrained.grammar_seconds / constrained.steps)
        print(f"{rows} row(s): grammar stage alone {statistics.median(mask_times) * 1e3:.3f} ms per step")
        report(f"per step, {rows} row(s): constrained / unconstrained sampling", statistics.median(constrained_times),
               statistics.median(free_times), "goal <= 1.3")


if __name__ == "__main__":
    main()

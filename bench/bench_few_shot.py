"""The shot sweep on SmolLM2: scored items per second, against the raw forward passes it needs.

    .venv/bin/python -m bench.bench_few_shot

The sweep runs each setting's shared prefix (instruction + shots) once and then one short pass per
held-out item (all labels of the item scored from that pass). "raw" times exactly those model calls on
tokens prepared beforehand: the ratio is the cost of prompt assembly, tokenisation and bookkeeping
(goal <= 1.1). "naive" is the textbook batch, every label's full prompt + label in one padded pass
per item (timed on the k=8 setting only, it is slow): the gap shows what sharing the prefix saves.
"""

from __future__ import annotations

import statistics
import time

import torch

from bench.common import report
from playground.core.registry import SMOLLM2_SOURCE
from playground.core.service import ModelService
from playground.core.settings import load_settings
from playground.language.few_shot.prompts import build_few_shot_prompt, choose_shots
from playground.language.few_shot.request import FewShotSettings
from playground.language.few_shot.scoring import label_token_ids
from playground.language.few_shot.sweep import sweep, sweep_settings
from playground.language.few_shot.tasks import load_tasks

MODEL = "SmolLM2-135M-Instruct (offline demo)"
REPEATS = 3


def main() -> None:
    settings = load_settings(overrides={"models": {"language": [SMOLLM2_SOURCE]}})
    lm = ModelService(settings).load("language", MODEL)
    limits, task = settings.limits, load_tasks()["sentiment"]
    request = FewShotSettings(
        task.format.instruction, task.format.input_name, task.format.output_name, False,
        [[e.input, e.output] for e in task.examples], "", task.answer, ", ".join(task.labels),
    ).checked(limits, query_required=False)
    eval_set = task.eval_set
    labels_ids = label_token_ids(lm, request.labels, chat=False)
    assert all(len(ids) == 1 for ids in labels_ids), "the raw baseline below assumes one-token labels"

    # What the sweep feeds the model, prepared outside the timing.
    plans = []
    for setting in sweep_settings(len(request.examples)):
        shots = choose_shots(request.examples, setting.k, setting.order, request.seed, request.labels)
        prompts = [build_few_shot_prompt(lm, request.fmt, shots, item.input, limits).ids for item in eval_set]
        common = min(p.shape[1] for p in prompts) - 1
        while any(not torch.equal(p[0, :common], prompts[0][0, :common]) for p in prompts):
            common -= 1
        plans.append((prompts[0][:, :common], [p[:, common:] for p in prompts], [p.shape[1] for p in prompts]))
    items = len(plans) * len(eval_set)

    def raw(plans=plans) -> None:
        with torch.inference_mode():
            for prefix, suffixes, lengths in plans:
                cache = lm.model(prefix, use_cache=True, logits_to_keep=1).past_key_values if prefix.shape[1] else None
                for suffix, length in zip(suffixes, lengths):
                    lm.model(suffix, attention_mask=torch.ones((1, length), dtype=torch.long), past_key_values=cache,
                             use_cache=True, logits_to_keep=1).logits[0, -1].log_softmax(-1)
                    if cache is not None:
                        cache.crop(-suffix.shape[1])

    label_batch = torch.tensor(labels_ids)

    def naive(plans=plans) -> None:
        with torch.inference_mode():
            for prefix, suffixes, _ in plans:
                for suffix in suffixes:
                    prompt = torch.cat([prefix, suffix], dim=1)
                    batch = torch.cat([prompt.expand(len(labels_ids), -1), label_batch], dim=1)
                    lm.model(batch, logits_to_keep=2).logits[:, 0].log_softmax(-1)

    def full_sweep() -> None:
        for _ in sweep(lm, request, eval_set, limits):
            pass

    # Pairs run back to back, so both halves of a ratio see the same load on a shared machine.
    full_sweep(), raw()  # warm-up
    pairs = [(seconds(full_sweep), seconds(raw)) for _ in range(REPEATS)]
    ratio = statistics.median(swept / bare for swept, bare in pairs)
    sweep_seconds = statistics.median(swept for swept, _ in pairs)
    largest = [max(plans, key=lambda plan: plan[0].shape[1])]  # naive is slow: the longest prompts only
    naive_seconds, shared_seconds = seconds(lambda: naive(largest)), seconds(lambda: raw(largest))
    print(f"{MODEL}, sentiment task: {len(plans)} settings x {len(eval_set)} held-out items = {items} scored items, "
          f"{len(labels_ids)} labels, {torch.get_num_threads()} CPU threads, median of {REPEATS} pairs")
    print(f"sweep throughput: {items / sweep_seconds:.1f} scored items/s ({sweep_seconds:.2f} s)")
    print(f"sweep / raw forward passes it needs: {ratio:.3f} (goal <= 1.1)")
    report("shared prefix / naive padded batch, k=8 items", shared_seconds, naive_seconds, "(< 1: sharing pays)")


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

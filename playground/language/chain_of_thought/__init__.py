"""Chain-of-thought prompting, compared with answering directly, on GSM8K word problems.

Four ways to ask the same model the same question:
- direct answer: the answer is started for the model ("The answer is"), so it cannot reason first;
- zero-shot CoT: the answer starts "Let's think step by step." (Kojima et al., 2022);
- few-shot CoT: worked solutions of other problems come first (Wei et al., 2022);
- self-consistency: k sampled few-shot CoT answers, majority vote on their numbers (Wang et al., 2023).
Each answer's final number is extracted and scored against the reference, with its cost in tokens
and seconds: the price of thinking, made visible.

- `gsm8k`: the problems and worked solutions;
- `prompts`: the modes, their settings and the prompt each writes;
- `answering`: one mode's answer (streamed, or a batch), its number and the vote;
- `evaluation`: accuracy per mode on many problems, batched.
The per-problem table and its CSV are the view's (`playground.views.chain_of_thought`).
"""

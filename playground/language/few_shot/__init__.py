"""In-context learning you can measure: few-shot prompts, the model's probability of each label, and generated
answers, with no weight updates.

- `tasks`: the shipped task sets and the answer types;
- `prompts`: choosing k shots (as given, shuffled, random labels) and writing the prompt, plain or chat;
- `request`: the form as typed (`FewShotSettings`) and checked (`FewShotRequest`);
- `scoring`: each label's log-likelihood after the prompt, as probabilities over the label set;
- `run`: one run (prompt, answer, label probabilities), priced before it starts;
- `sweep`: accuracy on a held-out set as shots are added, shuffled, or given random labels.
"""

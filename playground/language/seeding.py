"""The one place a local model's sampling is seeded.

`model.generate` in transformers 5 draws from torch's global generator (it takes no `torch.Generator`),
so a seeded run sets the global seed; that is why local requests take turns. Step-by-step sessions draw
with their own generator (`steps.StepSession`) and need none of this.
"""

from __future__ import annotations

import torch


def seed_sampling(seed: int) -> None:
    torch.manual_seed(int(seed))

"""Served == trained: the check that a vLLM server answers with the adapter the trainer made.

After training, the trainer records, for a few held-out prompts, the adapter's greedy continuation in
transformers + PEFT: each token with its log-probability and those of the runners-up (`reference`). Before a
swap, each server is sent the same prompt token ids at temperature 0 with `logprobs`, and `deviation`
compares what it generated with the record. A wrong precision (bfloat16 rounding moves log-probs by 0.2-0.4
on a 135M model, more than a young adapter changes them), a wrong base model or wrong adapter files all show
as a deviation beyond the tolerance, and the swap fails.

Only generation log-probs are asked for, the path every answer takes. `prompt_logprobs` (scoring a given text)
is never sent to a serving engine: on vLLM-CPU with LoRA it killed the engine when batched beside a chat request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

CANARY_PROMPTS = 3
CANARY_TOKENS = 12
TOP_LOGPROBS = 5


@dataclass(frozen=True)
class Step:
    """One generated token: its id, its log-probability, and the best `TOP_LOGPROBS` tokens' log-probabilities."""

    token: int
    logprob: float
    top: dict[int, float]


@dataclass(frozen=True)
class Reference:
    prompt_ids: list[int]
    steps: list[Step]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        """From `as_dict`, as stored in JSON (where the top-k keys became strings)."""
        steps = [Step(s["token"], s["logprob"], {int(k): v for k, v in s["top"].items()}) for s in data["steps"]]
        return cls(list(data["prompt_ids"]), steps)


def deviation(reference: Sequence[Step], served: Sequence[Step]) -> float:
    """The largest difference between served and reference log-probabilities of the same token at the same place.

    Positions are compared while both generated the same tokens; at the first position where they chose
    differently (a near-tie), the served choice is looked up among the reference's runners-up and the walk
    stops there. A served choice the reference does not rank in its top tokens is an infinite deviation.
    """
    worst = 0.0
    for ref, got in zip(reference, served):
        ref_top, got_top = ref.top | {ref.token: ref.logprob}, got.top | {got.token: got.logprob}
        for token in ref_top.keys() & got_top.keys():
            worst = max(worst, abs(ref_top[token] - got_top[token]))
        if ref.token != got.token:
            return worst if got.token in ref_top else math.inf
    return worst


def reference(model: Any, prompt_ids: list[int], max_new_tokens: int = CANARY_TOKENS,
              eos_token_id: int | None = None) -> Reference:  # fmt: skip
    """Greedy continuation of `prompt_ids` under a transformers (+ PEFT) causal LM, from its raw logits (what vLLM
    returns as log-probs at temperature 0)."""
    import torch

    device = next(model.parameters()).device
    steps: list[Step] = []
    with torch.no_grad():
        output = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
        for _ in range(max_new_tokens):
            logps = torch.log_softmax(output.logits[0, -1].float(), dim=-1)
            top = torch.topk(logps, TOP_LOGPROBS)
            token = int(top.indices[0])
            steps.append(Step(token, float(logps[token]), dict(zip(top.indices.tolist(), top.values.tolist()))))
            if token == eos_token_id:
                break
            output = model(
                input_ids=torch.tensor([[token]], device=device), past_key_values=output.past_key_values, use_cache=True
            )
    return Reference(prompt_ids, steps)

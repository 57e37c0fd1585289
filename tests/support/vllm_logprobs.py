"""Log-probabilities of answers under a model served by vLLM (the served side of the gate's margin)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import httpx
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from core.config import NO_API_KEY
from training.gate import completion_ids


@lru_cache(maxsize=4)
def _tokenizer(base_model: str) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(base_model)


async def completion_logprob(
    base_url: str,
    model: str,
    prompt_messages: list[dict[str, Any]],
    completion: str | list[dict[str, Any]],
    *,
    base_model: str,
    api_key: str = NO_API_KEY,
) -> float:
    """log p(completion | chat-templated prompt) under served `model`, summed over the completion's tokens.

    `completion` is the assistant's text (or its message list, as in a preference pair). The tokens are split
    exactly as the trainer and `training.gate` split them, and sent as token ids, so nothing is re-tokenized.
    """
    messages = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else completion
    prompt_ids, answer_ids = completion_ids(_tokenizer(base_model), prompt_messages, messages)
    payload = {"model": model, "prompt": prompt_ids + answer_ids, "max_tokens": 1, "prompt_logprobs": 0}
    async with httpx.AsyncClient(timeout=60.0, headers={"Authorization": f"Bearer {api_key}"}) as client:
        response = await client.post(f"{base_url.rstrip('/')}/completions", json=payload)
    response.raise_for_status()
    per_token = response.json()["choices"][0]["prompt_logprobs"]
    positions = range(len(prompt_ids), len(prompt_ids) + len(answer_ids))
    return sum(per_token[i][str(token)]["logprob"] for i, token in zip(positions, answer_ids, strict=True))


async def served_margin(
    base_url: str, model: str, pairs: list[dict[str, Any]], *, base_model: str, api_key: str = NO_API_KEY
) -> float:
    """Mean of log p(chosen) - log p(rejected) over preference pairs, under served `model`."""
    margins = []
    for pair in pairs:
        chosen = await completion_logprob(base_url, model, pair["prompt"], pair["chosen"], base_model=base_model,
                                          api_key=api_key)  # fmt: skip
        rejected = await completion_logprob(base_url, model, pair["prompt"], pair["rejected"], base_model=base_model,
                                            api_key=api_key)  # fmt: skip
        margins.append(chosen - rejected)
    return sum(margins) / len(margins)

"""The promotion gate: held-out preference metrics of a model, and the pure rule that compares two of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from core.config import Settings
from training.answer_quality import AnswerCase, AnswerMetrics, answer_metrics
from core.canary import CANARY_PROMPTS, Reference, reference

EVAL_BATCH_SIZE = 8


@dataclass(frozen=True)
class GateMetrics:
    accuracy: float  # share of pairs whose chosen answer is more likely than the rejected one
    mean_margin: float  # mean of log p(chosen | prompt) - log p(rejected | prompt), completion tokens summed
    n: int
    # mean of log p(chosen | prompt): DPO can widen the margin while making the preferred answers less likely too
    chosen_logp: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


NO_PAIRS = GateMetrics(accuracy=0.0, mean_margin=0.0, n=0, chosen_logp=0.0)  # nothing to evaluate on


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def decide(candidate: GateMetrics, active: GateMetrics, settings: Settings) -> GateDecision:
    """Promote only if the candidate beats the active model (or the base) by the configured deltas on both."""
    if candidate.n == 0:
        return GateDecision(False, "no held-out pairs to evaluate on")
    need_accuracy = active.accuracy + settings.gate_min_accuracy_delta
    need_margin = active.mean_margin + settings.gate_min_margin_delta
    figures = (
        f"accuracy {candidate.accuracy:.3f} (need >= {need_accuracy:.3f}), "
        f"margin {candidate.mean_margin:.3f} (need >= {need_margin:.3f}) on {candidate.n} held-out pairs"
    )
    if candidate.accuracy >= need_accuracy and candidate.mean_margin >= need_margin:
        return GateDecision(True, f"passed: {figures}")
    return GateDecision(False, f"below the gate: {figures}")


def padding_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def prompt_ids(tokenizer: PreTrainedTokenizerBase, prompt: list[dict[str, Any]]) -> list[int]:
    """The chat-templated prompt up to where the assistant's answer starts, as the server would tokenize it."""
    return list(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True)["input_ids"])


def completion_ids(
    tokenizer: PreTrainedTokenizerBase, prompt: list[dict[str, Any]], completion: list[dict[str, Any]]
) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) of a chat-templated pair, split where TRL's DPOTrainer splits them."""
    start = prompt_ids(tokenizer, prompt)
    full_ids = tokenizer.apply_chat_template(prompt + completion, return_dict=True)["input_ids"]
    split = min(len(start), len(full_ids))
    split = next((i for i, (a, b) in enumerate(zip(start, full_ids)) if a != b), split)
    return full_ids[:split], full_ids[split:]


@torch.no_grad()
def sequence_logps(model: torch.nn.Module, sequences: list[tuple[list[int], list[int]]], pad_id: int) -> list[float]:
    """Sum of log p(completion token | everything before it) for each (prompt ids, completion ids).

    Left padding puts every completion at the end, so logits are computed only for the last positions
    (a full-vocabulary log-softmax over whole prompts would not fit a large model's batch in memory).
    """
    device = next(model.parameters()).device
    results: list[float] = []
    for start in range(0, len(sequences), EVAL_BATCH_SIZE):
        batch = [p + c for p, c in sequences[start : start + EVAL_BATCH_SIZE]]
        completion_lengths = [len(c) for _, c in sequences[start : start + EVAL_BATCH_SIZE]]
        width, keep = max(map(len, batch)), max(completion_lengths)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        completion = torch.zeros((len(batch), keep), dtype=torch.bool)
        for row, (ids, n) in enumerate(zip(batch, completion_lengths, strict=True)):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
            completion[row, keep - n :] = True
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)  # as if each sequence were alone
        logits = model(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), position_ids=positions.to(device),
            logits_to_keep=keep + 1,
        ).logits[:, :-1].float()  # position i predicts token i + 1: these predict the last `keep` tokens
        targets = input_ids[:, width - keep :].to(device)
        token_logps = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        results += (token_logps * completion.to(device)).sum(dim=1).tolist()
    return results


def load_model(base_model: str, adapter_dir: str | None) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """The base model (plus `adapter_dir`) for evaluation, in the precision it is served in: float32 on a CPU,
    bfloat16 on a GPU (where training runs in it too)."""
    torch.set_flush_denormal(True)  # float32 on a CPU: denormal activations made evaluation about 20x slower
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    gpu = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if gpu else torch.float32)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
    return model.to("cuda" if gpu else "cpu").eval(), tokenizer


def evaluate(base_model: str, adapter_dir: str | None, pairs: list[dict[str, Any]]) -> GateMetrics:
    """Preference accuracy and mean log-probability margin of the base model (plus `adapter_dir`) on `pairs`."""
    if not pairs:
        return NO_PAIRS
    return measure(*load_model(base_model, adapter_dir), pairs)


def evaluate_candidate(
    base_model: str, adapter_dir: str, pairs: list[dict[str, Any]], canary_pairs: list[dict[str, Any]]
) -> tuple[GateMetrics, list[Reference]]:
    """The gate's metrics of a new adapter on `pairs`, and its canary references on the first prompts of
    `canary_pairs` (what every server must reproduce before the adapter is served: core/canary.py)."""
    model, tokenizer = load_model(base_model, adapter_dir)
    prompts: list[list[dict[str, Any]]] = []
    for pair in canary_pairs:
        if pair["prompt"] not in prompts and len(prompts) < CANARY_PROMPTS:
            prompts.append(pair["prompt"])
    references = [
        reference(model, prompt_ids(tokenizer, prompt), eos_token_id=tokenizer.eos_token_id) for prompt in prompts
    ]
    metrics = measure(model, tokenizer, pairs) if pairs else NO_PAIRS
    return metrics, references


def evaluate_answers(
    base_model: str, adapter_dir: str | None, cases: list[AnswerCase], max_new_tokens: int
) -> AnswerMetrics:
    """What the base model (plus `adapter_dir`) answers to held-out prompts, greedily, judged as a reader would."""
    if not cases:
        return AnswerMetrics(n=0, cites_any=0.0, cites_right=0.0, invalid=0.0, echo=0.0)
    model, tokenizer = load_model(base_model, adapter_dir)
    return answer_metrics(generate_answers(model, tokenizer, [c.prompt for c in cases], max_new_tokens), cases)


@torch.no_grad()
def generate_answers(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: list[list[dict[str, Any]]],
    max_new_tokens: int,
) -> list[str]:  # fmt: skip
    """Greedy answers (as vLLM gives them at temperature 0), a batch at a time, left-padded."""
    device = next(model.parameters()).device
    pad_id = padding_id(tokenizer)
    answers: list[str] = []
    for start in range(0, len(prompts), EVAL_BATCH_SIZE):
        batch = [prompt_ids(tokenizer, p) for p in prompts[start : start + EVAL_BATCH_SIZE]]
        width = max(map(len, batch))
        input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids in batch], device=device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
        output = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
                                do_sample=False, pad_token_id=pad_id)  # fmt: skip
        answers += tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return answers


def measure(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, pairs: list[dict[str, Any]]) -> GateMetrics:
    sequences = []
    for pair in pairs:
        sequences.append(completion_ids(tokenizer, pair["prompt"], pair["chosen"]))
        sequences.append(completion_ids(tokenizer, pair["prompt"], pair["rejected"]))
    pad_id = padding_id(tokenizer)
    logps = sequence_logps(model, sequences, pad_id)
    margins = [chosen - rejected for chosen, rejected in zip(logps[::2], logps[1::2], strict=True)]
    return GateMetrics(
        accuracy=sum(m > 0 for m in margins) / len(margins), mean_margin=sum(margins) / len(margins), n=len(margins),
        chosen_logp=sum(logps[::2]) / len(margins),
    )  # fmt: skip

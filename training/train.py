"""Train one LoRA adapter with TRL's DPOTrainer on preference pairs; write only the adapter, to a new directory."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import DPOConfig, DPOTrainer

from retrieval.config import Settings

log = logging.getLogger(__name__)

# vLLM serves LoRA on the decoder projections only: an adapted lm_head or embedding is refused (or crashes).
UNSERVABLE_MODULES = frozenset({"lm_head", "embed_tokens"})


class TrainingConfigError(ValueError):
    """The training settings would produce an adapter vLLM cannot serve."""


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    loss: float  # the last logged training loss

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def lora_config(settings: Settings) -> LoraConfig:
    """The adapter's shape, checked against what the vLLM servers accept."""
    if settings.lora_rank > settings.vllm_max_lora_rank:
        raise TrainingConfigError(
            f"WIKIBOT_LORA_RANK={settings.lora_rank} exceeds WIKIBOT_VLLM_MAX_LORA_RANK={settings.vllm_max_lora_rank} "
            "(the vLLM servers' --max-lora-rank): they would refuse the adapter"
        )
    if unservable := UNSERVABLE_MODULES.intersection(settings.lora_target_modules):
        raise TrainingConfigError(
            f"WIKIBOT_LORA_TARGET_MODULES must not include {sorted(unservable)}: vLLM cannot serve them"
        )
    return LoraConfig(
        r=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        target_modules=list(settings.lora_target_modules),
        bias="none",
        use_dora=False,
        modules_to_save=None,
        task_type="CAUSAL_LM",
    )


class _LogProgress(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201 - transformers' signature
        if logs and "loss" in logs:
            log.info("DPO step %d/%d: loss %.4f", state.global_step, state.max_steps, logs["loss"])


def train_adapter(base_model: str, train_pairs: list[dict], out_dir: Path, settings: Settings) -> TrainResult:
    """DPO-train a LoRA adapter on `train_pairs` (TRL conversational preference format) into the new `out_dir`.

    The adapter is written to `<out_dir>.partial` and renamed into place when complete, so `out_dir` either
    does not exist or holds a whole adapter.
    """
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists: every adapter version gets a new directory")
    if not train_pairs:
        raise ValueError("no training pairs")
    peft_config = lora_config(settings)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    args = DPOConfig(
        output_dir=str(partial),
        beta=settings.train_beta,
        learning_rate=settings.train_learning_rate,
        num_train_epochs=settings.train_epochs,
        per_device_train_batch_size=settings.train_batch_size,
        max_length=settings.train_max_length,
        bf16=bf16,
        fp16=False,
        use_cpu=not gpu,
        gradient_checkpointing=gpu,  # saves GPU memory; only slows the CPU down
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if bf16 else torch.float32)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_pairs),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[_LogProgress()],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; _LogProgress logs instead
    log.info("training %s on %d pairs (%s) into %s", base_model, len(train_pairs), "GPU" if gpu else "CPU", out_dir)
    started = time.perf_counter()
    try:
        output = trainer.train()
        seconds = time.perf_counter() - started
        trainer.model.save_pretrained(partial)  # the adapter only: adapter_config.json + adapter_model.safetensors
        partial.rename(out_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # after a failure; gone already after the rename
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]  # one per step
    result = TrainResult(steps=output.global_step, seconds=seconds, loss=losses[-1])
    log.info("trained %s: %d steps in %.1fs, final loss %.4f", out_dir.name, result.steps, result.seconds, result.loss)
    return result

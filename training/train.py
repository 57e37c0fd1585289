"""Train one LoRA adapter with TRL's DPOTrainer on preference pairs; write only the adapter, to a new directory."""

from __future__ import annotations

import ctypes
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import DPOConfig, DPOTrainer
from trl.trainer import utils as trl_utils

from training.config import TrainingConfig, TrainingConfigError
from training.gate import completion_ids

log = logging.getLogger(__name__)

# Resident memory of training on a CPU, measured by bench/training.py on SmolLM2-135M (30 layers, hidden 576):
# about 1.2 GB with the model loaded, plus 1.4 MB per token of every sequence in a batch (a pair is two) with
# gradient checkpointing, 2.6 MB without; scaled to other models by layers x hidden size.
RUNTIME_BYTES = 0.7e9  # torch, transformers and TRL themselves
ACTIVATION_BYTES = {True: 81, False: 150}  # per token, layer and hidden unit; keyed by gradient checkpointing


# TRL's fused LM head scores every position on a CPU (its compact path needs Triton) in tiles of tokens x 32,768
# vocabulary entries, and its backward holds about eight float32 copies of a tile: 2 GB at 2,000 tokens. Tiles of
# 4,096 entries cut the peak of a 1,000-token pair from 5.6 to 3.7 GB (bench/training.py has the speed).
CPU_VOCAB_TILE = 4096
# glibc serves allocations under its mmap threshold from its heap, and raises the threshold (up to 32 MB) each time
# a larger block is freed: tensors then come from the heap, which keeps what is freed, so a run's resident memory is
# over twice what it holds (4.8 GB for 1,000-token pairs that need 1.8). A fixed threshold gives every tensor over it
# its own mapping, returned when freed, at the cost of zeroing new pages (WIKIBOT_TRAIN_MMAP_THRESHOLD_MB).
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


@dataclass(frozen=True)
class TrainResult:
    steps: int
    seconds: float
    loss: float  # the last logged training loss

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def cpu_supports_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matrix products in hardware (elsewhere bf16 autocast is slower than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def use_bf16(precision: str) -> bool:
    if precision != "auto":
        return precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_supports_bf16()


def estimate_memory_gb(
    parameters: int, bytes_per_parameter: int, layers: int, hidden: int, longest_tokens: int, config: TrainingConfig
) -> float:
    """Peak memory of a training run whose longest pair (prompt + answer) has `longest_tokens` tokens."""
    tokens = 2 * config.batch_size * min(longest_tokens, config.max_length)
    activations = tokens * layers * hidden * ACTIVATION_BYTES[config.gradient_checkpointing]
    return (RUNTIME_BYTES + parameters * bytes_per_parameter + activations) / 1e9


def available_memory_gb(config: TrainingConfig) -> float:
    """What this run may use: WIKIBOT_TRAIN_MAX_MEMORY_GB, else free GPU memory or the machine's available memory
    plus what this process already holds (the model is loaded when this is asked)."""
    if config.max_memory_gb is not None:
        return config.max_memory_gb
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return (free + torch.cuda.memory_allocated()) / 1e9
    return (psutil.virtual_memory().available + psutil.Process().memory_info().rss) / 1e9


def check_memory(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, pairs: list[dict], config: TrainingConfig
) -> None:
    """Stop before training, naming the settings to change, when the run would not fit in memory."""
    longest = max(pairs, key=lambda p: len(str(p["prompt"])) + max(len(str(p["chosen"])), len(str(p["rejected"]))))
    tokens = max(
        sum(map(len, completion_ids(tokenizer, longest["prompt"], longest[side]))) for side in ("chosen", "rejected")
    )
    shape = model.config.get_text_config()
    parameters = sum(p.numel() for p in model.parameters())
    width = next(model.parameters()).element_size()
    needed = estimate_memory_gb(parameters, width, shape.num_hidden_layers, shape.hidden_size, tokens, config)
    available = available_memory_gb(config)
    log.info("training needs about %.1f GB of the %.1f GB available", needed, available)
    if needed > available:
        raise TrainingConfigError(
            f"training would need about {needed:.1f} GB but {available:.1f} GB are available (pairs of up to "
            f"{min(tokens, config.max_length)} tokens, {config.batch_size} a batch): lower "
            f"WIKIBOT_TRAIN_BATCH_SIZE ({config.batch_size}) or WIKIBOT_TRAIN_MAX_LENGTH "
            f"({config.max_length})"
            + ("" if config.gradient_checkpointing else ", or set WIKIBOT_TRAIN_GRADIENT_CHECKPOINTING=true")
            + "; WIKIBOT_TRAIN_MAX_MEMORY_GB overrides what is taken as available"
        )


def fix_mmap_threshold(threshold_bytes: int) -> None:
    """Make glibc give the memory of freed blocks of `threshold_bytes` or more back to the system; elsewhere (not
    glibc: macOS, musl) do nothing. For the whole process, from now on."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes)


class _LogProgress(TrainerCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201 - transformers' signature
        if logs and "loss" in logs:
            log.info("DPO step %d/%d: loss %.4f", state.global_step, state.max_steps, logs["loss"])


def train_adapter(base_model: str, train_pairs: list[dict], out_dir: Path, config: TrainingConfig) -> TrainResult:
    """DPO-train a LoRA adapter on `train_pairs` (TRL conversational preference format) into the new `out_dir`.

    The adapter is written to `<out_dir>.partial` and renamed into place when complete, so `out_dir` either
    does not exist or holds a whole adapter.
    """
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists: every adapter version gets a new directory")
    if not train_pairs:
        raise ValueError("no training pairs")
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.is_available()
    bf16 = use_bf16(config.precision)
    args = DPOConfig(
        output_dir=str(partial),
        beta=config.beta,
        loss_type=["sigmoid", "sft"] if config.sft_weight else ["sigmoid"],
        loss_weights=[1.0, config.sft_weight] if config.sft_weight else None,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        max_length=config.max_length,
        precompute_ref_log_probs=True,  # the reference pass runs once, before training, not beside every step
        bf16=bf16,
        fp16=False,
        use_cpu=not gpu,
        gradient_checkpointing=config.gradient_checkpointing,
        save_strategy="no",
        report_to="none",
        logging_steps=1,
        disable_tqdm=True,
        seed=0,
    )
    if not gpu:
        trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = CPU_VOCAB_TILE  # no public setting: read by TRL at every call
        if config.mmap_threshold_bytes:
            fix_mmap_threshold(config.mmap_threshold_bytes)
    torch.set_flush_denormal(True)  # float32 on a CPU: denormal activations make a forward pass about 20x slower
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    # on a CPU, bf16 is autocast over float32 weights; on a GPU the weights are bf16 too (and so is serving there)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.bfloat16 if bf16 and gpu else torch.float32)
    check_memory(model, tokenizer, train_pairs, config)
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_pairs),
        processing_class=tokenizer,
        peft_config=config.lora,
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

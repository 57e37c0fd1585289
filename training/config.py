"""The configuration of a training run, built once from the settings (like TRL's DPOConfig beside its trainer):
what the trainer needs, with the checks across settings made before any work starts."""

from __future__ import annotations

from dataclasses import dataclass

from peft import LoraConfig

from core.config import Settings

# vLLM serves LoRA on the decoder projections only: an adapted lm_head or embedding is refused (or crashes).
UNSERVABLE_MODULES = frozenset({"lm_head", "embed_tokens"})


class TrainingConfigError(ValueError):
    """The training settings would produce an adapter vLLM cannot serve, or a run that cannot fit."""


@dataclass(frozen=True)
class TrainingConfig:
    lora: LoraConfig
    beta: float
    learning_rate: float
    epochs: float
    batch_size: int
    gradient_accumulation: int
    max_length: int
    precision: str  # auto | bf16 | fp32
    gradient_checkpointing: bool
    sft_weight: float  # 0: DPO alone
    mmap_threshold_bytes: int  # 0: glibc decides
    max_memory_gb: float | None  # None: what is available when the run starts

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainingConfig:
        """The run's configuration; TrainingConfigError when the adapter could not be served."""
        if settings.lora_rank > settings.vllm_max_lora_rank:
            raise TrainingConfigError(
                f"WIKIBOT_LORA_RANK={settings.lora_rank} exceeds WIKIBOT_VLLM_MAX_LORA_RANK="
                f"{settings.vllm_max_lora_rank} (the vLLM servers' --max-lora-rank): they would refuse the adapter"
            )
        if unservable := UNSERVABLE_MODULES.intersection(settings.lora_target_modules):
            raise TrainingConfigError(
                f"WIKIBOT_LORA_TARGET_MODULES must not include {sorted(unservable)}: vLLM cannot serve them"
            )
        lora = LoraConfig(
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            target_modules=list(settings.lora_target_modules),
            bias="none",
            use_dora=False,
            modules_to_save=None,
            task_type="CAUSAL_LM",
        )
        return cls(
            lora=lora,
            beta=settings.train_beta,
            learning_rate=settings.train_learning_rate,
            epochs=settings.train_epochs,
            batch_size=settings.train_batch_size,
            gradient_accumulation=settings.train_gradient_accumulation,
            max_length=settings.train_max_length,
            precision=settings.train_precision,
            gradient_checkpointing=settings.train_gradient_checkpointing,
            sft_weight=settings.train_sft_weight,
            mmap_threshold_bytes=round(settings.train_mmap_threshold_mb * 1024 * 1024),
            max_memory_gb=settings.train_max_memory_gb,
        )

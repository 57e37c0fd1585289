"""Training fixtures: settings sized for the tiny model on a CPU, one adapter trained per session, vLLM clean-up."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.config import Settings
from core.db import Database
from tests.support.preference_pairs import wiki_preference_pairs
from core.registry import NAME_PREFIX
from training.config import TrainingConfig
from training.train import TrainResult, train_adapter

# big steps on short sequences: a few seconds of CPU training move a tiny random model visibly
TINY_TRAINING = {
    "train_max_length": 512,
    "train_batch_size": 8,
    "train_gradient_accumulation": 1,
    "gate_answers": False,  # a random model's answers say nothing; the answer gate has tests of its own
    "train_learning_rate": 1e-2,
    "train_epochs": 3.0,
    "lora_rank": 8,
    "lora_alpha": 16,
}
TRAINED_PAIRS = 16  # pairs 0..15 of wiki_preference_pairs(40) train the session adapter; 16..39 are unseen


def tiny_training(**changes: object) -> TrainingConfig:
    return TrainingConfig.from_settings(Settings(**{**TINY_TRAINING, **changes}))


@pytest.fixture(scope="session")
def preference_pairs() -> list[dict]:
    return wiki_preference_pairs(40)


@dataclass(frozen=True)
class TrainedAdapter:
    path: Path
    result: TrainResult
    base_sha256: str  # of the base model's weights file before training


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def trained(tiny_model: Path, preference_pairs: list[dict], tmp_path_factory: pytest.TempPathFactory) -> TrainedAdapter:
    """One LoRA adapter DPO-trained on the tiny model, shared by the tests that need a trained one."""
    out = tmp_path_factory.mktemp("trained") / "adapter"
    base_sha256 = sha256(tiny_model / "model.safetensors")
    result = train_adapter(str(tiny_model), preference_pairs[:TRAINED_PAIRS], out, tiny_training())
    return TrainedAdapter(out, result, base_sha256)


@pytest.fixture(scope="session")
def trained_adapter(trained: TrainedAdapter) -> Path:
    return trained.path


@pytest.fixture(scope="module")
def training_settings(settings: Settings, tiny_model: Path, vllm_url: str) -> Settings:
    return settings.model_copy(
        update={"base_model": str(tiny_model), "llm_base_url": vllm_url, "vllm_urls": [vllm_url], **TINY_TRAINING}
    )


@pytest.fixture(scope="module")
async def db(training_settings: Settings, vllm_url: str) -> AsyncIterator[Database]:
    """The module's database; afterwards every wiki-v* adapter is unloaded from the shared vLLM (each module's
    registry starts again at wiki-v1)."""
    async with Database.open(training_settings) as opened:
        yield opened
    async with httpx.AsyncClient(timeout=30) as client:
        served = (await client.get(f"{vllm_url}/models")).json()["data"]
        for model in served:
            if model["id"].startswith(NAME_PREFIX):
                await client.post(f"{vllm_url}/unload_lora_adapter", json={"lora_name": model["id"]})


"""Real TRL DPO training of a LoRA adapter on the tiny model, and the gate's metrics of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.config import Settings
from tests.training.conftest import TINY_TRAINING, TRAINED_PAIRS, TrainedAdapter, sha256, tiny_training
from training.gate import evaluate
from training.config import TrainingConfig, TrainingConfigError
from training.train import estimate_memory_gb, train_adapter

pytestmark = pytest.mark.slow
BASE_FILES = ("chat_template.jinja", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json")  # fmt: skip


def test_adapter_is_written_alone_and_servable(trained_adapter: Path):
    config = json.loads((trained_adapter / "adapter_config.json").read_text())
    assert config["r"] == TINY_TRAINING["lora_rank"] and config["lora_alpha"] == TINY_TRAINING["lora_alpha"]
    assert config["bias"] == "none" and not config["use_dora"] and not config["modules_to_save"]
    assert "lm_head" not in config["target_modules"]
    weights = load_file(trained_adapter / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights), "LoRA weights only"
    assert not list(trained_adapter.parent.glob("*.partial")), "the partial directory was renamed into place"
    assert not (trained_adapter / "model.safetensors").exists()


def test_lora_weights_changed_and_base_untouched(trained: TrainedAdapter, tiny_model: Path):
    weights = load_file(trained.path / "adapter_model.safetensors")
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert lora_b and all(torch.count_nonzero(w) > 0 for w in lora_b), "lora_B starts at zero: training moved it"
    assert sha256(tiny_model / "model.safetensors") == trained.base_sha256
    assert sorted(p.name for p in tiny_model.iterdir()) == sorted(BASE_FILES)


def test_train_result(trained: TrainedAdapter):
    steps_per_epoch = -(-TRAINED_PAIRS // TINY_TRAINING["train_batch_size"])
    assert trained.result.steps == steps_per_epoch * TINY_TRAINING["train_epochs"]
    assert trained.result.seconds > 0
    assert 0 < trained.result.loss < 0.6931, "below log(2), the DPO loss before any training"


def test_margin_grows_on_trained_and_unseen_prompts(
    trained_adapter: Path, tiny_model: Path, preference_pairs: list[dict]
):
    for pairs in (preference_pairs[:TRAINED_PAIRS], preference_pairs[TRAINED_PAIRS : TRAINED_PAIRS + 12]):
        base = evaluate(str(tiny_model), None, pairs)
        tuned = evaluate(str(tiny_model), str(trained_adapter), pairs)
        assert base.n == tuned.n == len(pairs)
        assert tuned.mean_margin > base.mean_margin
        assert tuned.accuracy >= base.accuracy


def test_evaluate_with_no_pairs(tiny_model: Path):
    assert evaluate(str(tiny_model), None, []).n == 0


def test_never_overwrites_an_adapter_directory(trained_adapter: Path, tiny_model: Path, preference_pairs: list[dict]):
    with pytest.raises(FileExistsError):
        train_adapter(str(tiny_model), preference_pairs[:2], trained_adapter, tiny_training())


def test_a_run_that_would_not_fit_in_memory_stops_before_training_and_names_the_settings(
    tiny_model: Path, preference_pairs: list[dict], tmp_path: Path
):
    small = tiny_training(train_max_memory_gb=0.5)
    with pytest.raises(TrainingConfigError, match=r"would need about .* GB but 0.5 GB .*WIKIBOT_TRAIN_BATCH_SIZE \(8\)"):
        train_adapter(str(tiny_model), preference_pairs[:2], tmp_path / "adapter", small)
    assert not list(tmp_path.iterdir()), "nothing written"


def test_the_memory_estimate_follows_what_the_settings_change():
    smollm = {"parameters": 134_515_008, "bytes_per_parameter": 4, "layers": 30, "hidden": 576}
    defaults = Settings()

    def estimate(tokens: int = 1000, **changes: object) -> float:
        config = TrainingConfig.from_settings(defaults.model_copy(update=changes))
        return estimate_memory_gb(**smollm, longest_tokens=tokens, config=config)

    assert 3.5 < estimate() < 4.5, "as measured by bench/training.py: about 4 GB for 1,000-token pairs"
    assert estimate(train_batch_size=4) > 2 * estimate()
    assert estimate(train_gradient_checkpointing=False) > estimate()
    assert estimate(4000, train_max_length=4096) > estimate(4000) == estimate(2048), "pairs are cut at max length"


def test_an_sft_weight_makes_the_preferred_answers_likelier_than_dpo_alone(
    tiny_model: Path, preference_pairs: list[dict], tmp_path: Path
):
    pairs, unseen = preference_pairs[:8], preference_pairs[TRAINED_PAIRS : TRAINED_PAIRS + 8]
    dpo, dpo_sft = (tiny_training(train_sft_weight=weight) for weight in (0.0, 1.0))
    train_adapter(str(tiny_model), pairs, tmp_path / "dpo", dpo)
    result = train_adapter(str(tiny_model), pairs, tmp_path / "dpo+sft", dpo_sft)
    assert result.loss > 0.6931, "the SFT loss (the preferred answers' mean token NLL) is added to DPO's"
    for held in (pairs, unseen):
        alone, added = (evaluate(str(tiny_model), str(tmp_path / name), held) for name in ("dpo", "dpo+sft"))
        assert added.chosen_logp > alone.chosen_logp
        assert added.mean_margin > 0 and added.accuracy >= 0.5, "still a preference: chosen above rejected"

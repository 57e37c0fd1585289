"""Pure rules, no model or database: the promotion gate, the adapter's shape, the scheduler's URL and crontab."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.config import Settings
from training.gate import GateMetrics, decide
from training.schedule import MISFIRE_GRACE_SECONDS, crontab_trigger, missed_run
from training.config import TrainingConfig, TrainingConfigError

ROOT = Path(__file__).resolve().parents[2]

BASE = GateMetrics(accuracy=0.6, mean_margin=1.0, n=10, chosen_logp=-9.0)


def rules(accuracy_delta: float = 0.0, margin_delta: float = 0.0) -> Settings:
    return Settings(gate_min_accuracy_delta=accuracy_delta, gate_min_margin_delta=margin_delta)


@pytest.mark.parametrize(
    ("candidate", "accuracy_delta", "margin_delta", "promote"),
    [
        (GateMetrics(0.7, 2.0, 10, -9.0), 0.0, 0.0, True),  # better on both
        (GateMetrics(0.6, 1.0, 10, -9.0), 0.0, 0.0, True),  # equal passes with zero deltas
        (GateMetrics(0.7, 0.9, 10, -9.0), 0.0, 0.0, False),  # more accurate, smaller margin
        (GateMetrics(0.5, 3.0, 10, -9.0), 0.0, 0.0, False),  # bigger margin, less accurate
        (GateMetrics(0.7, 2.0, 10, -9.0), 0.2, 0.0, False),  # short of the required accuracy gain
        (GateMetrics(0.8, 2.0, 10, -9.0), 0.2, 0.5, True),  # exactly the required gains
        (GateMetrics(0.8, 1.4, 10, -9.0), 0.2, 0.5, False),  # short of the required margin gain
        (GateMetrics(0.5, 0.5, 10, -9.0), -0.2, -1.0, True),  # negative deltas tolerate a small regression
        (GateMetrics(0.0, 0.0, 0, -9.0), -1.0, -100.0, False),  # nothing held out: never promoted
    ],
)
def test_decide(candidate: GateMetrics, accuracy_delta: float, margin_delta: float, promote: bool):
    decision = decide(candidate, BASE, rules(accuracy_delta, margin_delta))
    assert decision.promote is promote
    assert decision.reason.startswith("passed" if promote else ("below" if candidate.n else "no held-out"))


def test_decide_reason_gives_the_figures():
    reason = decide(GateMetrics(0.5, 0.25, 8, -9.0), BASE, rules(0.1, 0.5)).reason
    assert "accuracy 0.500 (need >= 0.700)" in reason and "margin 0.250 (need >= 1.500)" in reason
    assert "8 held-out pairs" in reason


def test_lora_config_is_what_vllm_serves():
    config = TrainingConfig.from_settings(Settings(lora_rank=8, lora_alpha=16)).lora
    assert (config.r, config.lora_alpha, config.bias, config.use_dora) == (8, 16, "none", False)
    assert not config.modules_to_save
    assert set(config.target_modules) == set(Settings().lora_target_modules)


def test_rank_above_the_servers_max_is_refused():
    with pytest.raises(TrainingConfigError, match="LORA_RANK=32 exceeds WIKIBOT_VLLM_MAX_LORA_RANK=16"):
        TrainingConfig.from_settings(Settings(lora_rank=32, vllm_max_lora_rank=16)).lora


def test_adapting_lm_head_is_refused():
    with pytest.raises(TrainingConfigError, match="lm_head"):
        TrainingConfig.from_settings(Settings(lora_target_modules=["q_proj", "lm_head"])).lora


@pytest.mark.parametrize(
    ("expr", "day_of_week"),
    [
        ("0 3 * * *", "*"),
        ("0 3 * * 0", "sun"),  # crontab's Sunday (APScheduler 3 alone would read Monday)
        ("0 3 * * 7", "sun"),
        ("0 3 * * 1-5", "mon,tue,wed,thu,fri"),
        ("0 3 * * 0,6", "sun,sat"),
        ("0 3 * * */3", "sun,wed,sat"),
        ("0 3 * * mon-fri", "mon-fri"),
    ],
)
def test_crontab_weekdays_count_from_sunday(expr: str, day_of_week: str):
    fields = {f.name: str(f) for f in crontab_trigger(expr).fields}
    assert fields["day_of_week"] == day_of_week and (fields["hour"], fields["minute"]) == ("3", "0")


def test_a_run_missed_while_no_scheduler_was_up_is_due_within_the_grace_period():
    trigger = crontab_trigger("0 3 * * *")

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 12, day, hour, minute, tzinfo=trigger.timezone)

    due = at(2, 3)
    assert missed_run(trigger, last_run=at(1, 3, 1), now=at(2, 3, 20)) == due, "yesterday's ran, today's did not"
    assert missed_run(trigger, last_run=None, now=at(2, 3, 20)) == due
    assert missed_run(trigger, last_run=at(2, 3, 1), now=at(2, 3, 20)) is None, "today's ran"
    assert missed_run(trigger, last_run=at(1, 3, 1), now=at(2, 2, 59)) is None, "not due yet"
    late = at(2, 3) + timedelta(seconds=MISFIRE_GRACE_SECONDS + 60)
    assert missed_run(trigger, last_run=at(1, 3, 1), now=late) is None, "too late: the next one will do"


def test_a_fixed_mmap_threshold_gives_large_blocks_back_when_freed_and_keeps_small_ones_on_the_heap():
    code = """
import ctypes
from training.train import fix_mmap_threshold
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                              "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
mapped = lambda: libc.mallinfo2().hblkhd  # bytes in blocks with memory of their own
fix_mmap_threshold(8 * 2**20)
before = mapped()
big = bytearray(9 * 2**20)
with_big = mapped()
small = bytearray(4 * 2**20)  # glibc's own threshold starts at 128 kB: it would map this too
with_small = mapped()
del big
print(with_big - before >= 9 * 2**20, with_small == with_big, mapped() == before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.split() == ["True", "True", "True"]

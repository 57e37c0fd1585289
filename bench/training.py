"""Training benchmark: DPO training speed, gate evaluation speed, and adapter swap time in vLLM.

    python bench/training.py [--base-model PATH] [--pairs 32] [--batch-size 8] [--swaps 5]

Runs on demand, never in the tests. Without --base-model it builds the tests' tiny 2-layer Llama (CPU numbers);
on a GPU machine give a real model (and a GPU vLLM) for GPU numbers.
1. `train_adapter` (TRL DPOTrainer + LoRA) on synthetic pairs from the sample wiki: steps/s, pairs/s.
2. `gate.evaluate` on the same pairs, base and adapter: pairs/s.
3. Swap: vLLM `load_lora_adapter` to the first served chat completion with the new name, median of N.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first

import httpx  # noqa: E402
import torch  # noqa: E402

from retrieval.config import Settings  # noqa: E402
from retrieval.sample import SAMPLE_WIKI  # noqa: E402
from tests.support.preference_pairs import wiki_preference_pairs  # noqa: E402
from tests.support.tiny_model import build_tiny_model  # noqa: E402
from tests.support.vllm_server import serve_vllm  # noqa: E402
from training.gate import evaluate  # noqa: E402
from bench.report import table  # noqa: E402
from training.train import train_adapter  # noqa: E402
from training.vllm_adapters import VLLMAdapters  # noqa: E402


def bench_training(base_model: str, pairs: list[dict], settings: Settings, out: Path) -> list[list[object]]:
    result = train_adapter(base_model, pairs, out, settings)
    epochs = settings.train_epochs
    return [[len(pairs), settings.train_batch_size, epochs, result.steps, result.seconds,
             result.steps / result.seconds, len(pairs) * epochs / result.seconds, result.loss]]  # fmt: skip


def bench_gate(base_model: str, adapter: Path, pairs: list[dict]) -> list[list[object]]:
    rows: list[list[object]] = []
    for label, adapter_dir in (("base", None), ("base + adapter", str(adapter))):
        started = time.perf_counter()
        metrics = evaluate(base_model, adapter_dir, pairs)
        seconds = time.perf_counter() - started
        rows.append([label, metrics.n, seconds, metrics.n / seconds, metrics.accuracy, metrics.mean_margin])
    return rows


async def bench_swap(base_model: Path, adapter: Path, swaps: int) -> list[list[object]]:
    """Load under a new name, then time until a chat completion with that name is served; unload; repeat."""
    loads, firsts = [], []
    with serve_vllm(base_model, "wikibot-base") as url:
        servers = VLLMAdapters([url])
        (server,) = servers.servers
        async with httpx.AsyncClient(timeout=120) as client:
            for i in range(swaps + 1):  # the first is a warm-up
                name = f"bench-v{i}"
                started = time.perf_counter()
                await servers.load(server, name, str(adapter))
                loaded = time.perf_counter()
                response = await client.post(f"{url}/chat/completions", json={
                    "model": name, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})  # fmt: skip
                response.raise_for_status()
                served = time.perf_counter()
                await servers.unload(server, name)
                if i:
                    loads.append(loaded - started)
                    firsts.append(served - started)
    return [[swaps, statistics.median(loads) * 1000, statistics.median(firsts) * 1000, max(firsts) * 1000]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", type=Path, help="HF model directory (default: build the tiny test model)")
    parser.add_argument("--pairs", type=int, default=32, help="synthetic preference pairs to train on (<= 118)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--swaps", type=int, default=5, help="timed adapter swaps")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="wikibot-bench-") as tmp_name:
        tmp = Path(tmp_name)
        base = args.base_model
        if base is None:
            corpus = [p.read_text(encoding="utf-8") for p in sorted((SAMPLE_WIKI / "pages").rglob("*.md"))]
            base = build_tiny_model(tmp / "tiny-llama", corpus)
        gpu = torch.cuda.is_available()
        device = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"
        print(f"model {base}, {device}")
        pairs = wiki_preference_pairs(args.pairs)
        settings = Settings(data_dir=tmp, train_max_length=512, train_batch_size=args.batch_size,
                            train_epochs=args.epochs, train_learning_rate=1e-2, lora_rank=8, lora_alpha=16)  # fmt: skip
        adapter = tmp / "adapters" / "bench-v1"
        table("DPO training (TRL DPOTrainer, LoRA r=8)",
              ["pairs", "batch", "epochs", "steps", "seconds", "steps/s", "pairs/s", "final loss"],
              bench_training(str(base), pairs, settings, adapter))  # fmt: skip
        table("Gate evaluation (held-out log-prob margins, no grad)",
              ["model", "pairs", "seconds", "pairs/s", "accuracy", "mean margin"],
              bench_gate(str(base), adapter, pairs))  # fmt: skip
        table("Adapter swap in vLLM (load_lora_adapter -> first served request)",
              ["swaps", "load ms (median)", "to first answer ms (median)", "to first answer ms (max)"],
              asyncio.run(bench_swap(base, adapter, args.swaps)))  # fmt: skip


if __name__ == "__main__":
    main()

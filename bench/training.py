"""Training benchmark on the real default model: memory and speed of one training cycle, and the swap time.

    python bench/training.py [--base-model DIR] [--pairs 8] [--tokens 1000] [--swaps 5] [--no-swap]

Runs on demand, never in the tests. Without --base-model it prepares the default model (SmolLM2-135M-Instruct)
in WIKIBOT_DATA_DIR, as `wikibot up` does. With the default training settings:
1. One cycle's model work in a process of its own: `train_adapter` (TRL DPO + LoRA) on `--pairs` preference pairs
   of about `--tokens` tokens each (prompt + answer, prompts built like the bot's from the sample wiki), then
   `evaluate_candidate` (held-out gate metrics and the canary references) on 4 pairs. Its peak resident memory
   (ru_maxrss), seconds per pair and tokens per second (both sequences of a pair, every epoch).
2. The machine's matrix-multiply throughput in the precision training used, and what share of it training reaches
   (2 x parameters x tokens FLOPs for each of: forward, backward through the activations (the base weights are
   frozen), the recomputation of gradient checkpointing; the reference pass once; attention left out).
3. Swap: vLLM `load_lora_adapter` to the first served chat completion with the new name, median of N.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # as a script, bench/ would come first

import httpx  # noqa: E402
import torch  # noqa: E402

from bench.report import table  # noqa: E402
from core.prompt import Source, build_messages  # noqa: E402
from core.config import Settings  # noqa: E402
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI  # noqa: E402
from training.default_model import prepare_default_model  # noqa: E402
from training.train import use_bf16  # noqa: E402
from core.vllm_adapters import VLLMAdapters  # noqa: E402
from core.vllm_server import serve_vllm  # noqa: E402

GATE_PAIRS = 4
CHOSEN = "Ask your manager first, then file the request in the HR portal within five working days [{n}]."
REJECTED = "I am not sure, but I think the wiki says something about it somewhere [{n}]."


def wiki_pairs(tokenizer: Any, count: int, tokens: int) -> list[dict[str, Any]]:
    """`count` pairs of about `tokens` tokens (prompt + chosen answer): sample wiki pages as numbered sources."""
    from training.gate import completion_ids

    pages = sorted((SAMPLE_WIKI / "pages").rglob("*.md"))
    pairs = []
    for i in range(count):
        texts = [pages[(i * 7 + k) % len(pages)].read_text(encoding="utf-8") for k in range(12)]
        chars = tokens * 4  # a first guess at 4 characters a token, then corrected by counting
        for _ in range(6):
            sources, left = [], chars
            for k, text in enumerate(texts):
                if left <= 0:
                    break
                page = pages[(i * 7 + k) % len(pages)]
                sources.append(Source(k, k, page.parent.name, page.stem, "", f"{SAMPLE_BASE_URL}{page.stem}/",
                                      text[:left], 1.0, n=k + 1))  # fmt: skip
                left -= len(sources[-1].text)
            prompt = build_messages(f"Question {i}: what does the wiki say about this?", sources, company="Harborline")
            chosen = [{"role": "assistant", "content": CHOSEN.format(n=1 + i % len(sources))}]
            length = sum(map(len, completion_ids(tokenizer, prompt, chosen)))
            if abs(length - tokens) <= tokens // 50:
                break
            chars = int(chars * tokens / length)
        rejected = [{"role": "assistant", "content": REJECTED.format(n=1 + (i + 1) % len(sources))}]
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "tokens": length})
    return pairs


def _cycle(base_model: str, pairs: list[dict[str, Any]], out: str, results: Any) -> None:
    """In a child process: train, then the candidate's evaluation, as a training cycle does them."""
    from training.config import TrainingConfig
    from training.gate import evaluate_candidate
    from training.train import train_adapter

    warnings.filterwarnings("ignore")
    settings = Settings(data_dir=Path(out).parent)
    started = time.perf_counter()
    trained = train_adapter(base_model, pairs, Path(out), TrainingConfig.from_settings(settings))
    train_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux
    evaluate_candidate(base_model, out, pairs[:GATE_PAIRS], pairs)
    results.put({"train_seconds": trained.seconds, "cycle_seconds": time.perf_counter() - started,
                 "steps": trained.steps, "train_peak_gb": train_peak})  # fmt: skip


def bench_cycle(base_model: str, pairs: list[dict[str, Any]], out: Path) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_cycle, args=(base_model, [{k: p[k] for k in ("prompt", "chosen", "rejected")}
                                                                for p in pairs], str(out), results))  # fmt: skip
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"the training process ended with {child.exitcode} (killed for memory?)")
    measured = results.get()
    measured["peak_gb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB on Linux
    return measured


def matmul_tflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - started) / 1e12


async def bench_swap(base_model: str, adapter: Path, swaps: int) -> list[list[object]]:
    """Load under a new name, then time until a chat completion with that name is served; unload; repeat."""
    loads, firsts = [], []
    settings = Settings()
    with serve_vllm(base_model, "wikibot-base", log_path=adapter.parent / "vllm.log",
                    lora_target_modules=settings.lora_target_modules,
                    extra_args=["--kv-cache-memory-bytes", "1G"]) as url:  # fmt: skip
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
    parser.add_argument("--base-model", help="HF model directory (default: the default model, prepared if needed)")
    parser.add_argument("--pairs", type=int, default=8, help="preference pairs to train on")
    parser.add_argument("--tokens", type=int, default=1000, help="tokens of each pair's prompt + chosen answer")
    parser.add_argument("--swaps", type=int, default=5, help="timed adapter swaps")
    parser.add_argument("--no-swap", action="store_true", help="leave out the vLLM swap timing")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from transformers import AutoTokenizer

    settings = Settings()
    base = args.base_model or str(prepare_default_model(settings.data_dir))
    tokenizer = AutoTokenizer.from_pretrained(base)
    pairs = wiki_pairs(tokenizer, args.pairs, args.tokens)
    mean_tokens = statistics.mean(p["tokens"] for p in pairs)
    print(f"model {base}; {torch.get_num_threads()} threads; {len(pairs)} pairs of {mean_tokens:.0f} tokens; "
          f"batch {settings.train_batch_size} x {settings.train_gradient_accumulation} accumulation, "
          f"precision {settings.train_precision}, checkpointing {settings.train_gradient_checkpointing}, "
          f"{settings.train_epochs:g} epochs")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="wikibot-bench-") as tmp_name:
        adapter = Path(tmp_name) / "adapters" / "bench-v1"
        cycle = bench_cycle(base, pairs, adapter)
        trained_tokens = 2 * mean_tokens * len(pairs) * settings.train_epochs  # chosen and rejected sequences
        per_pair = cycle["train_seconds"] / (len(pairs) * settings.train_epochs)
        table("One training cycle on the CPU (train + gate + canary references, in a process of its own)",
              ["pairs", "tokens/pair", "steps", "train s", "cycle s", "s/pair", "tokens/s", "training peak GB",
               "cycle peak GB"],
              [[len(pairs), round(mean_tokens), cycle["steps"], cycle["train_seconds"], cycle["cycle_seconds"],
                per_pair, trained_tokens / cycle["train_seconds"], cycle["train_peak_gb"], cycle["peak_gb"]]])  # fmt: skip

        from transformers import AutoModelForCausalLM

        params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(base).parameters())
        passes = 6 if settings.train_gradient_checkpointing else 4  # forward, backward (activations), recompute
        flops = (passes + 2 / settings.train_epochs) * params * trained_tokens  # + the reference pass, once
        achieved = flops / cycle["train_seconds"] / 1e12
        # without AVX512-BF16 or AMX, torch multiplies bfloat16 in software (minutes for one product) and training
        # runs in float32: the share is then of the float32 peak
        bf16 = use_bf16(settings.train_precision)
        peak = matmul_tflops(torch.bfloat16 if bf16 else torch.float32)
        table("Compute: training against the machine's matrix-multiply throughput (TFLOP/s)",
              ["parameters", "training", "precision", "matmul peak", "share"],
              [[f"{params / 1e6:.0f}M", achieved, "bf16" if bf16 else "fp32", peak, achieved / peak]])  # fmt: skip

        if not args.no_swap:
            table("Adapter swap in vLLM (load_lora_adapter -> first served request)",
                  ["swaps", "load ms (median)", "to first answer ms (median)", "to first answer ms (max)"],
                  asyncio.run(bench_swap(base, adapter, args.swaps)))  # fmt: skip


if __name__ == "__main__":
    main()

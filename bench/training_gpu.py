"""GPU training benchmark: the product's DPO + LoRA training (`train_adapter`) on a random-init Llama of real size.

    python bench/training_gpu.py [--size 1b|3b|8b|tiny] [--steps 20] [--seq-len 1024] [--batch 4]

On demand, on a GPU (`train_adapter` trains in bf16 with gradient checkpointing there); numbers go in README's
Benchmarks. Nothing is downloaded: a random model (saved to a temporary directory: `train_adapter` loads by path),
the tests' BPE tokenizer, and pairs of numbered sample-wiki sources filling about --seq-len tokens, the answers
citing different [n]. Steps/s leaves out the first step (warm-up). `--size tiny` also runs on CPU (fp32).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # as a script, bench/ would come first

import datasets  # noqa: E402
import frontmatter  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast  # noqa: E402

from bench.report import table  # noqa: E402
from core.prompt import Source, build_messages  # noqa: E402
from core.config import Settings  # noqa: E402
from retrieval.sample import SAMPLE_BASE_URL, SAMPLE_WIKI  # noqa: E402
from loopback.tiny_model import train_tokenizer  # noqa: E402
from training.config import TrainingConfig  # noqa: E402
from training.train import train_adapter  # noqa: E402

_SHAPE = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
          "vocab_size")  # fmt: skip
SIZES: dict[str, dict[str, Any]] = {  # vocab_size is at least the tokenizer's
    "tiny": dict(zip(_SHAPE, (128, 2, 2, 2, 256, 0), strict=True)),
    "1b": dict(zip(_SHAPE, (2048, 16, 32, 8, 8192, 32000), strict=True)),
    "3b": dict(zip(_SHAPE, (3072, 28, 24, 8, 8192, 32000), strict=True)),
    "8b": dict(zip(_SHAPE, (4096, 32, 32, 8, 14336, 128256), strict=True), rope_theta=500000.0),  # Llama-3-8B
}
ANSWER_TOKENS = 64  # room left after the prompt for the longer answer


class _StepTimes(logging.Handler):
    """When `train_adapter` logs each step (after the loss is read back, so the GPU has finished it)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("DPO step"):
            self.times.append(time.perf_counter())


def chat_tokens(tokenizer: PreTrainedTokenizerFast, messages: list[dict[str, str]], **kwargs: Any) -> int:
    return len(tokenizer.apply_chat_template(messages, return_dict=True, **kwargs)["input_ids"])


def prompt_messages(title: str, sources: list[Source]) -> list[dict[str, str]]:
    """The bot's prompt less its system message (about 200 tokens of this small-vocabulary BPE: no room at 256)."""
    return build_messages(f"What does the wiki say about {title}?", sources)[1:]


def synthetic_pairs(tokenizer: PreTrainedTokenizerFast, count: int, seq_len: int) -> tuple[list[dict[str, Any]], int]:
    """`count` preference pairs with prompts of up to seq_len - ANSWER_TOKENS tokens, and their tokens in all."""
    rng = random.Random(0)
    paragraphs = [
        (page.parent.name, str(post["title"]), f"{SAMPLE_BASE_URL}{page.parent.name}/{page.stem}/", text.strip())
        for page in sorted((SAMPLE_WIKI / "pages").rglob("*.md"))
        for post in [frontmatter.loads(page.read_text(encoding="utf-8"))]
        for text in post.content.split("\n\n")
        if text.strip() and not text.lstrip().startswith("#")
    ]
    budget = seq_len - ANSWER_TOKENS
    pairs, tokens = [], 0
    for _ in range(count):
        rng.shuffle(paragraphs)
        sources: list[Source] = []
        for space, title, url, text in paragraphs:  # text cut so that two sources fit at --seq-len 256
            n = len(sources) + 1
            source = Source(n, n, space, title, "", url, text[: seq_len // 3], 1.0, n=n)
            if chat_tokens(tokenizer, prompt_messages(title, [*sources, source]), add_generation_prompt=True) > budget:
                break
            sources.append(source)
        right, wrong = rng.sample(sources, 2)
        prompt = prompt_messages(right.title, sources)
        chosen = [{"role": "assistant", "content": f"{right.text[:120]} [{right.n}]"}]
        rejected = [{"role": "assistant", "content": f"I think that {wrong.text[:120]} [{wrong.n}]"}]
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
        tokens += sum(min(seq_len, chat_tokens(tokenizer, prompt + answer)) for answer in (chosen, rejected))
    return pairs, tokens


def build_model(size: str, tokenizer: PreTrainedTokenizerFast, settings: Settings, out: Path) -> tuple[int, int]:
    """Save a random Llama of `size` (bf16 on CUDA) and the tokenizer to `out`: (parameters, LoRA parameters)."""
    shape = dict(SIZES[size])
    shape["vocab_size"] = max(shape["vocab_size"], len(tokenizer))
    config = LlamaConfig(**shape, max_position_embeddings=max(settings.train_max_length, 8192),
                         tie_word_embeddings=False, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    gpu = torch.cuda.is_available()
    torch.manual_seed(0)
    with torch.device("cuda" if gpu else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if gpu else torch.float32)
    targets = set(settings.lora_target_modules)
    lora = sum(settings.lora_rank * (m.in_features + m.out_features) for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets)  # fmt: skip
    params = model.num_parameters()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return params, lora


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SIZES), default="1b")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps (>= 2: the first is not timed)")
    parser.add_argument("--seq-len", type=int, default=1024, help="prompt + answer tokens (train_max_length; >= 256)")
    parser.add_argument("--batch", type=int, default=4, help="pairs per step (train_batch_size)")
    args = parser.parse_args()
    if args.steps < 2 or args.seq_len < 256:
        parser.error("--steps must be >= 2 and --seq-len >= 256")
    gpu = torch.cuda.is_available()
    if not gpu and args.size != "tiny":
        print("no CUDA device: run this on a GPU machine (numbers go in README's Benchmarks)")
        return
    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()  # e.g. "longer than the model_max_length" for over-long candidates
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    device = torch.cuda.get_device_name() if gpu else f"CPU ({torch.get_num_threads()} threads)"

    with tempfile.TemporaryDirectory(prefix="wikibot-bench-gpu-") as tmp_name:
        tmp = Path(tmp_name)
        pages = sorted((SAMPLE_WIKI / "pages").rglob("*.md"))
        tokenizer = train_tokenizer(page.read_text(encoding="utf-8") for page in pages)
        settings = Settings(data_dir=tmp, train_max_length=args.seq_len, train_batch_size=args.batch, train_epochs=1)
        params, lora = build_model(args.size, tokenizer, settings, tmp / "base")
        pairs, tokens = synthetic_pairs(tokenizer, args.steps * args.batch, args.seq_len)
        step_times = _StepTimes()
        train_log = logging.getLogger("training.train")
        train_log.addHandler(step_times)
        train_log.setLevel(logging.INFO)
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        config = TrainingConfig.from_settings(settings)
        result = train_adapter(str(tmp / "base"), pairs, tmp / "adapters" / "bench", config)
        train_log.removeHandler(step_times)

    steps_per_s = (len(step_times.times) - 1) / (step_times.times[-1] - step_times.times[0])
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f}" if gpu else "-"
    table(f"DPO + LoRA training (train_adapter; {'bf16, gradient checkpointing' if gpu else 'fp32, CPU'})",
          ["model", "params", f"LoRA r={settings.lora_rank} params", "seq len", "tokens/seq", "batch", "steps",
           "steps/s", "tokens/s", "peak GiB", "device"],
          [[args.size, f"{params / 1e6:,.0f}M", f"{lora / 1e6:,.2f}M", args.seq_len, round(tokens / len(pairs) / 2),
            args.batch, result.steps, steps_per_s, tokens / result.steps * steps_per_s, peak, device]])  # fmt: skip


if __name__ == "__main__":
    main()

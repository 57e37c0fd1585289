"""A sentence-transformers model whose transformer runs in ONNX Runtime: a question embeds about 3x faster on CPU.

Own code because sentence-transformers' `backend="onnx"` needs optimum-onnx, which pins transformers < 4.58 (vLLM and
TRL need 5.x). The transformer is exported once with torch.onnx (torch.export based) into a cache folder, keyed by
a hash of its weights; tokenizing, pooling and normalising stay the model's own sentence-transformers modules.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer

log = logging.getLogger(__name__)

GRAPH_FILE = "model.onnx"
_CACHE_FORMAT = "1"  # bump when the exported graph changes shape, so old cache entries are not reused


class OnnxUnsupported(ValueError):
    """The model cannot run in ONNX Runtime (its first module is not a text transformer, or export failed)."""


class OnnxSentenceEncoder:
    """Embeds texts like `SentenceTransformer.encode`, with the transformer module in ONNX Runtime."""

    def __init__(self, model: SentenceTransformer, session: onnxruntime.InferenceSession) -> None:
        self.model = model
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.output_name = model[0].module_output_name
        # what `encode` applies by default, from the model's own configuration
        self.prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        self.truncate_dim = model.truncate_dim

    @classmethod
    def load(cls, model: SentenceTransformer, cache_dir: Path) -> OnnxSentenceEncoder:
        """Open the cached graph of `model`'s weights, exporting it first when there is none (seconds, once)."""
        inputs = text_inputs(model)
        folder = cache_dir / weights_key(model, inputs)
        graph = folder / GRAPH_FILE
        if graph.is_file():
            try:
                return cls(model, _session(graph))
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types: the entry is unusable
                log.warning("cached ONNX graph %s cannot be loaded (%s); exporting it again", folder, exc)
                shutil.rmtree(folder, ignore_errors=True)
        log.info("exporting the embedding model to ONNX into %s (once per model)", folder)
        export(model, inputs, folder)
        try:
            return cls(model, _session(graph))
        except Exception as exc:
            raise OnnxUnsupported(f"the exported graph {graph} cannot be loaded: {exc}") from exc

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit-length embeddings, one row per text; batches group texts of similar length (less padding)."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        batches = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        by_length = np.concatenate([self._encode_batch([texts[i] for i in batch]) for batch in batches])
        rows = np.empty_like(by_length)
        rows[order] = by_length
        return rows

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        features = self.model.preprocess(texts, prompt=self.prompt)
        (tokens,) = self.session.run(None, {name: features[name].numpy() for name in self.inputs})
        features[self.output_name] = torch.from_numpy(tokens)
        with torch.inference_mode():
            for module in list(self.model)[1:]:  # pooling, dense, normalize: whatever the model declares
                features = module(features)
            vectors = features["sentence_embedding"][:, : self.truncate_dim].float()
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        return vectors.numpy()


def _session(graph: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings about unused initializers are noise here
    # idle threads must not spin: PostgreSQL runs the full-text query on the same cores meanwhile (p50 -2 ms)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def text_inputs(model: SentenceTransformer) -> list[str]:
    """Names of the tensors the tokenizer gives the transformer (input_ids, attention_mask, ...)."""
    if not isinstance(model[0], Transformer) or model[0].module_output_name != "token_embeddings":
        raise OnnxUnsupported(f"its first module is {type(model[0]).__name__}, not a text transformer")
    accepted = model[0].model_forward_params  # None: the model takes any keyword
    features = model.preprocess(["probe"])
    return [n for n, v in features.items() if hasattr(v, "numpy") and (accepted is None or n in accepted)]


def weights_key(model: SentenceTransformer, inputs: Sequence[str]) -> str:
    """Names the cache entry: the same weights under another model name or path share it."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{_CACHE_FORMAT}|{torch.__version__}|{','.join(inputs)}".encode())
    for name, tensor in model[0].model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


class _TokenEmbeddings(torch.nn.Module):
    """The transformer with positional tensor inputs and the last hidden state as its one output (export shape)."""

    def __init__(self, model: torch.nn.Module, inputs: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.inputs = list(inputs)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.inputs, tensors, strict=True))).last_hidden_state


def export(model: SentenceTransformer, inputs: Sequence[str], folder: Path) -> None:
    """Write `folder`/model.onnx (and its weight files, for large models) atomically: a crash leaves no entry."""
    example = model.preprocess(["an example question", "a second, longer example sentence for the exporter"])
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
                _TokenEmbeddings(model[0].model, inputs).eval(),
                tuple(example[name] for name in inputs),
                input_names=list(inputs),
                output_names=["token_embeddings"],
                dynamic_shapes=(tuple(dims for _ in inputs),),
                dynamo=True,
                verbose=False,
            )
            program.save(str(staging / GRAPH_FILE))
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
    except Exception as exc:
        raise OnnxUnsupported(f"export to ONNX failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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

"""The one configuration object of wikibot: every setting comes from a `WIKIBOT_*` environment variable.

`wikibot config` prints the reference (name, default, help) generated from the fields below.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

ENV_PREFIX = "WIKIBOT_"
BUNDLED_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EmbeddingBackend = Literal["auto", "onnx", "torch"]
NO_API_KEY = "EMPTY"  # what OpenAI clients send to a vLLM that requires no key


class Settings(BaseSettings):
    """wikibot settings. Lists and mappings are given as JSON, e.g. `WIKIBOT_VLLM_URLS='["http://a:8000/v1"]'`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # --- storage -------------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path.home() / ".wikibot",
        description="Folder for the embedded PostgreSQL data, adapters and datasets; persists between runs.",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (with pgvector). Unset: an embedded server is started in DATA_DIR/pgdata.",
    )
    log_level: str = Field(default="INFO", description="Logging level (DEBUG, INFO, WARNING, ERROR).")
    log_json: bool = Field(default=False, description="Write logs as JSON lines (for log collectors).")
    db_pool_size: int = Field(default=10, ge=1, description="Maximum connections in the database pool.")

    # --- retrieval -----------------------------------------------------------------------------
    embedding_model: str = Field(
        default=BUNDLED_EMBEDDING_MODEL,
        description="sentence-transformers model name or path; the default is bundled (offline). "
        "Changing it re-embeds the wiki on the next ingest.",
    )
    embedding_batch_size: int = Field(default=64, ge=1, description="Chunks embedded per batch.")
    embedding_backend: EmbeddingBackend = Field(
        default="auto",
        description="Where embeddings run: `onnx` (ONNX Runtime, about 3x faster per question on a CPU, and later "
        "commands need no torch; the model is exported once into DATA_DIR/onnx), `torch`, or `auto` (onnx when the "
        "model was exported before or runs on a CPU, torch otherwise, e.g. on a GPU). Same vectors.",
    )
    chunk_size: int = Field(default=1200, ge=200, description="Largest chunk, in characters.")
    chunk_overlap: int = Field(default=150, ge=0, description="Characters shared by consecutive chunks of a section.")
    ingest_max_page_mb: float = Field(
        default=2.0,
        gt=0,
        description="Largest page file (or dump page) ingested, in MB; a larger one is skipped unread with a message "
        "and keeps its indexed version (1 MB of text is about 1,500 chunks to embed).",
    )
    ingest_max_delete_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="An ingest that would delete more than this share of a space's pages from its source stops "
        "before changing anything (a source cut short?); `wikibot ingest --allow-mass-deletion` goes ahead.",
    )
    search_k: int = Field(default=6, ge=1, description="Chunks retrieved per question.")
    search_candidates: int = Field(
        default=40, ge=1, description="Candidates taken from each of vector and full-text search before fusion."
    )
    search_chunks_per_page: int = Field(
        default=2,
        ge=1,
        description="Chunks of one page among those retrieved per question, at most, while other pages are found: "
        "the model gets the look-alike pages it must tell apart rather than more of one page.",
    )
    rrf_k: int = Field(
        default=10,
        ge=1,
        description="Reciprocal rank fusion constant: a chunk scores 1 / (k + rank) in each ranking; smaller k trusts "
        "the first places of each more.",
    )
    search_feedback: bool = Field(
        default=True,
        description="Rank higher the sources people's accepted corrections named right for questions like this one "
        "(labels refreshed from the feedback by the scheduler, or `wikibot labels`).",
    )
    search_label_similarity: float = Field(
        default=0.65,
        gt=0,
        le=1,
        description="How alike (cosine similarity of the embeddings) an earlier corrected question must be for its "
        "right source to count for a new one. Chosen with all-MiniLM-L6-v2 on the 18F handbook (README, "
        "Benchmarks): 0.6 also matched questions about other pages; another embedding model needs its own.",
    )
    search_label_weight: float = Field(
        default=2.0,
        gt=0,
        description="What the sources corrections named right weigh in the fusion, against 1 for each of the "
        "vector and full-text rankings: at 2 a labelled source counts as much as one both rank first.",
    )
    hnsw_ef_search: int = Field(default=100, ge=1, description="pgvector hnsw.ef_search (recall/speed trade-off).")
    fulltext_word_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Full-text search: a question word in more than this share of the chunks is too common to "
        "pick candidates (like a stop word); it still counts in their rank.",
    )
    fulltext_max_matches: int = Field(
        default=1000,
        ge=1,
        description="Full-text search: the question words that pick candidates match about this many chunks at "
        "most (the rarest word always picks); bounds the ranking work on a large wiki.",
    )

    min_similarity: float = Field(
        default=0.2,
        description="A chunk that no full-text search matched must have at least this cosine similarity to count "
        "as found; below it the bot says the wiki has nothing on the question.",
    )

    # --- language model (vLLM, OpenAI-compatible) --------------------------------------------------
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL of the vLLM server(s) that answer, e.g. http://vllm:8000/v1. Unset "
        "(and no BASE_MODEL): the local vLLM that `wikibot up` starts for the demonstration model.",
    )
    llm_model: str = Field(default="wikibot-base", description="Served name of the base model in vLLM.")
    llm_api_key: str = Field(
        default=NO_API_KEY,
        description="API key of the vLLM servers (their --api-key, or VLLM_API_KEY), sent with every request: "
        "answers, token counts, adapter loads. Set it wherever others can reach vLLM: without one, anyone who "
        "reaches it may load adapters. The local vLLM of `wikibot up` requires it when it is set.",
    )
    llm_timeout: float = Field(default=60.0, gt=0, description="Seconds an answer may take before the bot gives up on the LLM.")
    llm_max_tokens: int = Field(default=512, ge=1, description="Longest answer, in tokens.")
    llm_temperature: float = Field(default=0.1, ge=0, description="Sampling temperature of answers.")
    vllm_urls: list[str] = Field(
        default_factory=list,
        description="Every vLLM server (base URLs ending in /v1) that must load each new adapter; "
        "empty: just LLM_BASE_URL.",
    )
    vllm_port: int = Field(default=8000, ge=1, le=65535, description="Port of the local vLLM that `wikibot up` starts.")
    vllm_max_loras: int = Field(
        default=4, ge=2, description="Adapters a vLLM server holds at once (old + new during a swap, and spare)."
    )
    vllm_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="Precision of the local vLLM's weights: `auto` serves in the precision adapters are trained and "
        "gated in (float32 on a CPU, bfloat16 on a GPU). bfloat16 on a CPU moves a small model's log-probs by more "
        "than a young adapter does, so the canary would refuse its adapters.",
    )
    canary_tolerance: float = Field(
        default=0.02,
        gt=0,
        description="Largest difference allowed between the log-probabilities a vLLM server gives a new adapter's "
        "canary answers and those the trainer computed; beyond it the swap fails (wrong dtype, base model or files).",
    )
    vllm_extra_args: list[str] = Field(
        default_factory=list,
        description='Extra arguments for the local vLLM, e.g. ["--gpu-memory-utilization", "0.8"].',
    )
    prompt_max_chars: int = Field(default=6000, ge=500, description="Most characters of wiki sources put in a prompt.")
    history_turns: int = Field(default=3, ge=0, description="Earlier question/answer turns of a thread put in the prompt.")

    # --- Slack ---------------------------------------------------------------------------------------
    slack_bot_token: str | None = Field(default=None, description="Bot token (xoxb-...).")
    slack_signing_secret: str | None = Field(default=None, description="Signing secret (HTTP mode).")
    slack_app_token: str | None = Field(default=None, description="App-level token (xapp-...): set it for Socket Mode.")
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (a local double, or an Enterprise endpoint)."
    )
    port: int = Field(default=3000, ge=1, le=65535, description="HTTP port of the bot (Events API, /healthz, /metrics).")
    allowed_channels: list[str] = Field(
        default_factory=list, description="Channel ids the bot answers in; empty: every channel it is invited to."
    )
    allow_dms: bool | None = Field(
        default=None,
        description="Answer direct messages (and the assistant view). Unset: only when ALLOWED_CHANNELS is empty: a "
        "bot limited to some channels answers no one privately until this is true.",
    )
    channel_spaces: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Wiki spaces each channel may see, e.g. {"C0123": ["hr"], "*": ["hr", "it"]}; "*" is the default '
        "for other channels; no entry: every space. Direct messages follow DM_SPACES.",
    )
    dm_spaces: list[str] | None = Field(
        default=None,
        description='Wiki spaces direct messages see, e.g. ["hr", "it"]. Unset: the "*" entry of CHANNEL_SPACES; '
        "with no such entry, every space when CHANNEL_SPACES is empty, else none, and then direct messages are not "
        "answered (a private question never sees a space that channels are kept from).",
    )
    followup_rule: Literal["question_mark", "mention"] = Field(
        default="question_mark",
        description="In a thread the bot answered, which replies are new questions: `mention` (only replies that "
        "@mention the bot) or `question_mark` (those too, and replies ending in '?'). Other replies are feedback.",
    )
    stream_answers: bool = Field(default=True, description="Stream answers as they are generated (chat.startStream).")
    admin_users: list[str] = Field(
        default_factory=list,
        description='Slack member ids of the people who see usage, feedback and training charts in the App Home, e.g. '
        '["U0123ABCD"] (a profile\'s ⋮ menu: Copy member ID); empty: no one. They see corrections only from '
        "conversations they are in.",
    )
    company_name: str = Field(default="the company", description="Name used in the bot's instructions.")
    reviewers: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Slack user ids who approve or reject, in their App Home, the corrections the review rule holds '
        'back (links outside the wiki, instructions to the bot, answers others rated up), per scope: {"*": '
        '["U0ADMIN"], "C0123": ["U0456"], "hr": ["U0789"]}: "*" reviews all, a channel id the corrections of '
        "answers in that channel, a wiki space those of answers drawn from its pages. A reviewer sees only "
        "conversations they are a member of, and never their own corrections. Empty: no one, so held-back "
        "corrections are never used.",
    )

    # --- feedback ----------------------------------------------------------------------------------
    positive_reactions: list[str] = Field(
        default_factory=lambda: [
            "+1", "thumbsup", "white_check_mark", "heavy_check_mark", "heart", "raised_hands", "tada", "100", "star",
        ],
        description="Emoji (names, without colons) that rate an answer as good.",
    )
    negative_reactions: list[str] = Field(
        default_factory=lambda: ["-1", "thumbsdown", "x", "no_entry", "warning", "no_entry_sign", "disappointed"],
        description="Emoji that rate an answer as bad.",
    )
    feedback_ack_reaction: str = Field(
        default="memo", description="Emoji the bot adds to a correction or comment to show it was recorded."
    )

    # --- training -----------------------------------------------------------------------------------
    base_model: str | None = Field(
        default=None,
        description="Hugging Face name or local path of the base model vLLM serves as LLM_MODEL; LoRA adapters "
        "are trained on it. Unset with LLM_BASE_URL unset: the demonstration model SmolLM2-135M-Instruct, prepared "
        "in DATA_DIR/models; unset with LLM_BASE_URL set: training is off.",
    )
    train_schedule: str = Field(default="0 3 * * *", description="Cron schedule of the training job (server time).")
    train_min_new_pairs: int = Field(default=20, ge=1, description="Skip a scheduled run with fewer new preference pairs.")
    train_max_pairs: int = Field(
        default=500,
        ge=1,
        description="Most preference pairs one run trains on; the held-out pairs it is gated on are capped in "
        "proportion (TRAIN_HELDOUT_FRACTION). Over it, every prompt gives one pair, newest feedback first, before "
        "any gives a second: a run's time stays bounded as feedback accumulates (2 CPU cores train a 1,000-token "
        "pair in about 9 s with bfloat16, 18 s without).",
    )
    train_keep_datasets: int = Field(
        default=20,
        ge=1,
        description="Dataset snapshots kept: each training run deletes those older than the newest N, except the "
        "ones adapters were trained on.",
    )
    train_heldout_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of prompts kept out of training to gate new adapters."
    )
    train_max_user_share: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Most of a dataset snapshot one person may shape: their votes and corrections count on at most "
        "this share of the prompts that have feedback (never fewer than TRAIN_USER_MIN_PROMPTS), their earliest; "
        "the rest of theirs is left out (the snapshot's stats count it). 1: no cap.",
    )
    train_user_min_prompts: int = Field(
        default=10,
        ge=1,
        description="Prompts one person's feedback may always shape, whatever TRAIN_MAX_USER_SHARE gives: a small "
        "team's first feedback still counts.",
    )
    train_beta: float = Field(default=0.1, gt=0, description="DPO beta.")
    train_learning_rate: float = Field(default=5e-5, gt=0, description="Learning rate.")
    train_sft_weight: float = Field(
        default=0.0,
        ge=0,
        description="Weight of a supervised loss on the preferred answers, added to DPO's (TRL's loss types "
        "sigmoid + sft): it makes the preferred answers likelier, not only likelier than the rejected ones. 0: DPO "
        "alone, as bench/learning_loop.py chose (at 1, the default model's held-out answers began to cite, but "
        "sources that do not exist rather than the right one: README, the learning loop).",
    )
    train_epochs: float = Field(default=3.0, gt=0, description="Epochs over the training pairs.")
    train_batch_size: int = Field(
        default=1, ge=1, description="Pairs per device batch (memory grows with it: each pair is two sequences)."
    )
    train_gradient_accumulation: int = Field(
        default=4, ge=1, description="Batches whose gradients are summed before each optimizer step."
    )
    train_max_length: int = Field(default=2048, ge=64, description="Longest prompt+answer, in tokens.")
    train_precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto",
        description="Training arithmetic: `bf16` (mixed precision: float32 weights, bfloat16 compute), `fp32`, or "
        "`auto` (bf16 on a GPU that supports it and on CPUs with AVX512-BF16 or AMX, else fp32). Adapters are "
        "saved, gated and served in the base model's precision either way.",
    )
    train_gradient_checkpointing: bool = Field(
        default=True,
        description="Recompute each layer's activations in the backward pass instead of keeping them: a fraction "
        "of the memory for about a third more compute.",
    )
    train_mmap_threshold_mb: float = Field(
        default=4.0,
        ge=0,
        description="On a CPU, tensors of at least this many MB get memory of their own, given back to the system "
        "when freed (glibc's mmap threshold, fixed); smaller ones come from the heap, which keeps what is freed. "
        "Measured on 1,000-token pairs in float32 on 2 cores: 0 (glibc's own, rising to 32 MB) 4.8 GB at 19.7 s a "
        "pair; 8: 4.0 GB, 21.5 s; 6: 4.0 GB, 24 s; 4: 2.2 GB, 27.1 s; 0.125: 1.8 GB, about 28 s. 0: glibc's own.",
    )
    train_max_memory_gb: float | None = Field(
        default=None,
        gt=0,
        description="Memory a training run may use; a run estimated to need more stops before it starts, naming "
        "the setting to change. Unset: the memory available when the run starts.",
    )
    lora_rank: int = Field(default=16, ge=1, description="LoRA rank (keep <= vLLM --max-lora-rank).")
    lora_alpha: int = Field(default=32, ge=1, description="LoRA alpha.")
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Modules LoRA adapts (vLLM serves these; no lm_head/embeddings).",
    )
    vllm_max_lora_rank: int = Field(default=16, ge=1, description="The --max-lora-rank the vLLM servers run with.")
    gate_min_accuracy_delta: float = Field(
        default=0.0, description="Promote only if held-out preference accuracy >= the active adapter's + this."
    )
    gate_min_margin_delta: float = Field(
        default=0.0, description="Promote only if the held-out mean reward margin >= the active adapter's + this."
    )
    gate_answers: bool = Field(
        default=True,
        description="Also gate on answers: generate the held-out prompts' answers with the new and the active "
        "adapter, and promote only when they cite the right source more often and copy the sources and invent "
        "source numbers no more (training/answer_quality.py has the margins).",
    )
    gate_answer_prompts: int = Field(
        default=24, ge=1, description="Held-out prompts answered by each adapter for the answer gate."
    )
    adapter_unload_grace_seconds: float = Field(
        default=300.0, ge=0, description="Seconds the previous adapter stays loaded after a swap (requests in flight)."
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    @property
    def onnx_dir(self) -> Path:
        """Embedding models exported to ONNX, one folder per weights hash."""
        return self.data_dir / "onnx"


class SettingsInvalid(ValueError):
    """Settings that cannot be used: one line per problem, naming the variable and the form it takes."""


_FIELD_IN_MESSAGE = re.compile(r'field "(\w+)"')


def load_settings() -> Settings:
    """The settings from the environment; SettingsInvalid (one line per bad variable) instead of pydantic's report."""
    try:
        return Settings()
    except SettingsError as exc:  # a list or mapping that is not JSON: pydantic-settings names only the field
        match = _FIELD_IN_MESSAGE.search(str(exc))
        raise SettingsInvalid(_problem(match.group(1) if match else "", "is not valid JSON")) from None
    except ValidationError as exc:
        lines = [_problem(str(error["loc"][0]) if error["loc"] else "", error["msg"]) for error in exc.errors()]
        raise SettingsInvalid("\n".join(lines)) from None


def _problem(field_name: str, what: str) -> str:
    field = Settings.model_fields.get(field_name)
    if field is None:
        return f"invalid configuration: {what}"
    return f"{ENV_PREFIX}{field_name.upper()}: {what[:1].lower()}{what[1:]}; expected {expected_form(field)}"


def expected_form(field: FieldInfo) -> str:
    """How a setting is written, e.g. 'a JSON list, e.g. '["a", "b"]'' (for error messages)."""
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):  # X | None: the environment cannot say None
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    if origin is list:
        return """a JSON list in single quotes, e.g. '["first", "second"]'"""
    if origin is dict:
        return """a JSON object in single quotes, e.g. '{"C0123": ["hr"], "*": ["hr", "it"]}'"""
    forms = {bool: "true or false", int: "a whole number", float: "a number", Path: "a path"}
    return forms.get(annotation, "text")  # type: ignore[call-overload]


def settings_reference() -> list[dict[str, Any]]:
    """Every setting with its environment variable, default and help, for `wikibot config` and the README."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        rows.append(
            {
                "env": ENV_PREFIX + name.upper(),
                "default": "" if default is None else str(default).replace(str(Path.home()), "~"),
                "help": field.description or "",
            }
        )
    return rows

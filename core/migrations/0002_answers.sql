-- The answer log (raw material of training), Slack message claims (exactly-once answers), and the
-- adapter registry the bot reads its model name from.

CREATE TABLE adapters (
    id bigserial PRIMARY KEY,
    version int NOT NULL UNIQUE,
    name text NOT NULL UNIQUE,             -- served name in vLLM, e.g. wiki-v7
    path text NOT NULL,                    -- directory every vLLM server can read
    parent_id bigint REFERENCES adapters (id),
    dataset_id bigint,
    metrics jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'candidate'
        CHECK (status IN ('training', 'candidate', 'active', 'retired', 'failed', 'rejected')),
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    retired_at timestamptz
);
CREATE UNIQUE INDEX adapters_one_active ON adapters (status) WHERE status = 'active';

CREATE TABLE interactions (
    id bigserial PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('slack', 'cli')),
    team_id text,
    channel_id text,
    user_id text,
    thread_ts text,                        -- the thread the answer lives in
    question_ts text,                      -- the user's message
    answer_ts text,                        -- the bot's reply
    question text NOT NULL,
    spaces text[],                         -- spaces the asker could see (NULL: all)
    prompt_messages jsonb NOT NULL,        -- exactly what the model was sent
    sources jsonb NOT NULL,                -- retrieved chunks in prompt order, as they were
    cited int[] NOT NULL DEFAULT '{}',     -- source numbers the answer cites
    answer text NOT NULL,                  -- the answer as posted (Markdown)
    raw_answer text,                       -- the model's text before citation clean-up
    model text,                            -- served model name used
    adapter_id bigint REFERENCES adapters (id),
    status text NOT NULL CHECK (status IN ('answered', 'no_sources', 'llm_error')),
    error text,
    retrieval_ms double precision,
    generation_ms double precision,
    total_ms double precision,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX interactions_thread ON interactions (channel_id, thread_ts, created_at);
CREATE UNIQUE INDEX interactions_answer ON interactions (channel_id, answer_ts) WHERE answer_ts IS NOT NULL;
CREATE INDEX interactions_user ON interactions (user_id);

-- One row per Slack message the bot has taken on: a retried or duplicated delivery (Events API retries,
-- app_mention + message events, several replicas) finds the row and does nothing.
CREATE TABLE slack_claims (
    channel_id text NOT NULL,
    message_ts text NOT NULL,
    event_id text,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    interaction_id bigint REFERENCES interactions (id) ON DELETE SET NULL,
    PRIMARY KEY (channel_id, message_ts)
);

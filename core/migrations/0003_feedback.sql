-- Feedback on logged answers: ratings (reactions, buttons), corrections and comments (thread replies, modal).

CREATE TABLE feedback (
    id bigserial PRIMARY KEY,
    interaction_id bigint NOT NULL REFERENCES interactions (id) ON DELETE CASCADE,
    user_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('rating', 'correction', 'comment')),
    via text NOT NULL,                   -- 'reaction:<emoji>', 'button', 'reply', 'modal'
    value smallint CHECK (value IN (-1, 1)),   -- ratings only
    text text,                           -- corrections and comments
    source_n int,                        -- the source the user says is the right one (modal)
    channel_id text,
    message_ts text,                     -- the reply that holds a correction/comment
    event_ts numeric,                    -- Slack time of the latest change applied (orders late deliveries)
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    retracted_at timestamptz,
    CHECK ((kind = 'rating') = (value IS NOT NULL))
);
-- one row per way a user rated an answer (each emoji, the buttons), per reply message
CREATE UNIQUE INDEX feedback_rating_key ON feedback (interaction_id, user_id, via) WHERE kind = 'rating';
CREATE UNIQUE INDEX feedback_reply_key ON feedback (channel_id, message_ts) WHERE message_ts IS NOT NULL;
CREATE INDEX feedback_interaction ON feedback (interaction_id);
CREATE INDEX feedback_user ON feedback (user_id);

-- Slack event ids already applied: a retry or replay of one changes nothing.
CREATE TABLE feedback_events (
    event_id text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Each user's standing vote on each answer: their latest rating that is not retracted.
CREATE VIEW effective_ratings AS
SELECT DISTINCT ON (interaction_id, user_id) interaction_id, user_id, value, via, updated_at
FROM feedback
WHERE kind = 'rating' AND retracted_at IS NULL
ORDER BY interaction_id, user_id, event_ts DESC NULLS LAST, updated_at DESC;

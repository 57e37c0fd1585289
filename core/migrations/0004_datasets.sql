-- Versioned snapshots of the preference pairs built from feedback (training/datasets.py): each records
-- exactly which answers and feedback went in, and keeps its pairs as they were built.

CREATE TABLE datasets (
    id bigserial PRIMARY KEY,              -- the version
    created_at timestamptz NOT NULL DEFAULT now(),
    settings jsonb NOT NULL,               -- how it was built: heldout_fraction, max_distractors
    counts jsonb NOT NULL DEFAULT '{}',    -- pairs per split and kind, feedback stats, new_pairs
    interaction_ids bigint[] NOT NULL,     -- answers whose prompt, text or feedback went in
    feedback_ids bigint[] NOT NULL         -- feedback rows that went in
);

-- No foreign key to interactions: a snapshot stays whole if old answers are deleted.
CREATE TABLE dataset_pairs (
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    position int NOT NULL,                 -- order of the pairs in the snapshot
    interaction_id bigint NOT NULL,        -- the prompt's id (its first logged answer): the split key
    split text NOT NULL CHECK (split IN ('train', 'heldout')),
    kind text NOT NULL CHECK (kind IN ('correction', 'rating', 'distractor')),
    prompt jsonb NOT NULL,                 -- chat messages, exactly as logged
    chosen text NOT NULL,
    rejected text NOT NULL,
    PRIMARY KEY (dataset_id, position)
);
CREATE INDEX dataset_pairs_interaction ON dataset_pairs (dataset_id, interaction_id);

-- Finds every logged answer to the same prompt as a rated or corrected one.
CREATE INDEX interactions_prompt_md5 ON interactions (md5(prompt_messages::text));

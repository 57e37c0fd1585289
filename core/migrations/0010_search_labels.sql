-- What people's accepted corrections say about which source was right for a question (training/labels.py
-- builds them, retrieval/store.py reads them): a later question like it ranks that section's page higher.
-- Rebuilt from the feedback, so a retracted, rejected or purged correction takes its labels with it.
CREATE TABLE search_labels (
    feedback_id bigint NOT NULL REFERENCES feedback (id) ON DELETE CASCADE,
    page_id bigint NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    url text NOT NULL,                   -- the right source's URL (its section's anchor): which chunk to rank
    question text NOT NULL,
    embedding vector NOT NULL,           -- the question's, by the index's embedding model (cleared when it changes)
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feedback_id, page_id, url)
);

-- Typed and indexed like chunks.embedding once the index has a model (retrieval/store.py does it when one is set).
DO $$
DECLARE d int := (SELECT dimensions FROM embedding_index);
BEGIN
    IF d IS NOT NULL THEN
        EXECUTE format('ALTER TABLE search_labels ALTER COLUMN embedding TYPE vector(%s)', d);
        CREATE INDEX search_labels_embedding_hnsw ON search_labels USING hnsw (embedding vector_cosine_ops);
    END IF;
END $$;

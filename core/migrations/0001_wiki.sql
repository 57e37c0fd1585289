-- The indexed wiki: pages, their section chunks with embeddings and full-text vectors.
CREATE EXTENSION IF NOT EXISTS vector;

-- Which embedding model produced the vectors in chunks.embedding (one row). The column's dimension
-- follows the model: changing the model clears the vectors so that they are never mixed.
CREATE TABLE embedding_index (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model text NOT NULL,
    dimensions int NOT NULL CHECK (dimensions > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pages (
    id bigserial PRIMARY KEY,
    space text NOT NULL,
    page_key text NOT NULL,          -- stable id inside the space: relative path or wiki title
    source_root text NOT NULL,       -- the folder or dump it was ingested from
    title text NOT NULL,
    url text NOT NULL,
    content_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (space, page_key)
);
CREATE INDEX pages_source ON pages (space, source_root);

CREATE TABLE chunks (
    id bigserial PRIMARY KEY,
    page_id bigint NOT NULL REFERENCES pages (id) ON DELETE CASCADE,
    space text NOT NULL,
    position int NOT NULL,
    title text NOT NULL,
    section text NOT NULL,           -- heading path below the title, "A > B"
    url text NOT NULL,               -- page URL with the section anchor
    text text NOT NULL,
    content_hash text NOT NULL,      -- of the embedded text: unchanged chunks keep their vectors
    embedding vector,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('english', section), 'B')
        || setweight(to_tsvector('english', text), 'C')
    ) STORED,
    UNIQUE (page_id, position)
);
CREATE INDEX chunks_space ON chunks (space);
CREATE INDEX chunks_content_hash ON chunks (content_hash);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);

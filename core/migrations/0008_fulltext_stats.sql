-- Full-text search ranks by BM25 (retrieval/store.py), which compares a chunk's length in words with the
-- mean over the wiki: that mean (one row), refreshed with the word statistics after each ingest.
CREATE TABLE fulltext_stats (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mean_words real NOT NULL CHECK (mean_words > 0),  -- distinct words a chunk has, on average: length(tsv)
    updated_at timestamptz NOT NULL DEFAULT now()
);

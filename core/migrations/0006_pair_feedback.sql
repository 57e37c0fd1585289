-- Which feedback made each preference pair, so that purging a person (`wikibot feedback purge`) removes every pair
-- their feedback made, whoever's answer it was about. NULL: a pair built before this version (purge then goes by
-- the prompts their feedback was on: training/datasets.py).
ALTER TABLE dataset_pairs ADD COLUMN feedback_ids bigint[];

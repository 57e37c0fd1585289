-- A correction enters training only when confirmed: by its author (the "Use this as a correction?" question on a
-- thread reply, or the correction form), and by a reviewer when the review rule (bot/feedback.py) asks for one.

ALTER TABLE feedback
    ADD COLUMN confirmed_by text,             -- who said what the reply is (its author): a correction or a comment
    ADD COLUMN confirmed_at timestamptz,
    ADD COLUMN review_reasons text[] NOT NULL DEFAULT '{}',  -- why its text needs a reviewer (bot/feedback.py)
    ADD COLUMN reviewed_by text,
    ADD COLUMN reviewed_at timestamptz,
    ADD COLUMN review_verdict text CHECK (review_verdict IN ('approved', 'rejected'));

-- Before this version a correction form was explicit (its author confirmed it) but its text was never checked:
-- a reviewer decides. A reply was only guessed to be a correction and its author was never asked: not used.
UPDATE feedback SET confirmed_by = user_id, confirmed_at = created_at, review_reasons = '{given_before_review}'
WHERE kind = 'correction' AND via = 'modal';

-- Each correction's standing: 'unconfirmed' (its author has not said Yes), 'pending' (a reviewer must decide),
-- 'accepted' (used for training) or 'rejected' (by a reviewer). `reasons` adds to the text's reasons the one that
-- can change after confirmation: another person's standing 👍 on the answer it corrects.
CREATE VIEW correction_status AS
SELECT f.id, f.interaction_id, f.user_id, f.retracted_at, r.reasons,
    CASE WHEN f.confirmed_at IS NULL THEN 'unconfirmed'
         WHEN f.review_verdict = 'rejected' THEN 'rejected'
         WHEN f.review_verdict = 'approved' OR cardinality(r.reasons) = 0 THEN 'accepted'
         ELSE 'pending' END AS status
FROM feedback f
CROSS JOIN LATERAL (
    SELECT f.review_reasons || CASE WHEN EXISTS (
        SELECT 1 FROM effective_ratings v
        WHERE v.interaction_id = f.interaction_id AND v.user_id <> f.user_id AND v.value > 0
    ) THEN '{contradicts_votes}'::text[] ELSE '{}'::text[] END AS reasons
) r
WHERE f.kind = 'correction';

CREATE INDEX feedback_corrections_to_review ON feedback (created_at)
    WHERE kind = 'correction' AND confirmed_at IS NOT NULL AND review_verdict IS NULL AND retracted_at IS NULL;

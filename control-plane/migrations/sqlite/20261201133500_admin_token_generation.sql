-- Bumped at every password change; admin tokens carry the generation they were issued under and
-- stop working when it moves on.
ALTER TABLE admins ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;

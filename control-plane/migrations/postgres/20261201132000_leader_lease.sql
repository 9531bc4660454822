-- The lease of the control-plane replica that runs the periodic work (health checks,
-- maintenance): held by `holder` until `expires_at` (Unix ms, the database's clock) and renewed
-- while it lives.
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

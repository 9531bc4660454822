-- httvps control plane schema (SQLite). Times are Unix milliseconds (BIGINT) and ids are
-- UUID text, so the SQLite schema and the single store layer can share every query.
-- Booleans are INTEGER (0/1) here: sqlx's Any driver cannot decode SQLite's BOOLEAN type.

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

CREATE TABLE regions (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    latitude   REAL,
    longitude  REAL,
    created_at BIGINT NOT NULL
);

CREATE TABLE plans (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    device_limit   INTEGER NOT NULL CHECK (device_limit >= 0),
    session_limit  INTEGER NOT NULL CHECK (session_limit >= 0),
    quota_bytes    BIGINT CHECK (quota_bytes IS NULL OR quota_bytes >= 0),
    reset_strategy TEXT NOT NULL
        CHECK (reset_strategy IN ('none', 'daily', 'weekly', 'calendar_month', 'rolling_30d')),
    duration_days  INTEGER CHECK (duration_days IS NULL OR duration_days > 0),
    created_at     BIGINT NOT NULL
);

-- No rows for a plan means every region is allowed.
CREATE TABLE plan_regions (
    plan_id   TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    region_id TEXT NOT NULL REFERENCES regions (id) ON DELETE CASCADE,
    PRIMARY KEY (plan_id, region_id)
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    email      TEXT,
    status     TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at BIGINT NOT NULL
);

CREATE TABLE subscriptions (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    plan_id            TEXT NOT NULL REFERENCES plans (id) ON DELETE RESTRICT,
    status             TEXT NOT NULL
        CHECK (status IN ('active', 'on_hold', 'queued', 'ended', 'cancelled')),
    starts_at          BIGINT,
    ends_at            BIGINT,
    usage_reset_at     BIGINT,
    usage_reset_bytes  BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id, status);

CREATE TABLE devices (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
    created_at     BIGINT NOT NULL,
    last_seen_at   BIGINT,
    sticky_node_id TEXT
);
CREATE INDEX devices_by_user ON devices (user_id);

CREATE TABLE node_groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE nodes (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    host                  TEXT NOT NULL,
    port                  INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    cipher                TEXT NOT NULL,
    secret                TEXT NOT NULL,
    region_id             TEXT REFERENCES regions (id) ON DELETE SET NULL,
    weight                INTEGER NOT NULL CHECK (weight >= 0),
    capacity              INTEGER NOT NULL CHECK (capacity >= 0),
    status                TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'draining')),
    health                TEXT NOT NULL DEFAULT 'unknown'
        CHECK (health IN ('unknown', 'healthy', 'unhealthy')),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    consecutive_successes INTEGER NOT NULL DEFAULT 0,
    last_checked_at       BIGINT,
    last_latency_ms       INTEGER,
    last_error            TEXT,
    created_at            BIGINT NOT NULL
);

CREATE TABLE node_group_members (
    node_id  TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES node_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (node_id, group_id)
);

-- Health history: every state change, with the probe that caused it.
CREATE TABLE node_health_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id    TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    health     TEXT NOT NULL,
    latency_ms INTEGER,
    error      TEXT
);
CREATE INDEX node_health_events_by_node ON node_health_events (node_id, at);

CREATE TABLE gateways (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT,
    version      TEXT
);

CREATE TABLE gateway_tokens (
    id         TEXT PRIMARY KEY,
    gateway_id TEXT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    device_id         TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL,
    gateway_id        TEXT NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    node_id           TEXT REFERENCES nodes (id) ON DELETE SET NULL,
    client_region     TEXT,
    started_at        BIGINT NOT NULL,
    last_heartbeat_at BIGINT NOT NULL,
    ended_at          BIGINT,
    end_reason        TEXT,
    kill_requested    INTEGER NOT NULL DEFAULT 0,
    bytes_up          BIGINT NOT NULL DEFAULT 0,
    bytes_down        BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_live_by_node ON sessions (node_id) WHERE ended_at IS NULL;
CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE ended_at IS NULL;

-- The usage ledger. A report is identified by (gateway, report id): a replay inserts nothing.
CREATE TABLE usage_reports (
    gateway_id  TEXT NOT NULL,
    report_id   TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    records     INTEGER NOT NULL,
    PRIMARY KEY (gateway_id, report_id)
);

CREATE TABLE usage_records (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    gateway_id TEXT NOT NULL,
    report_id  TEXT NOT NULL,
    session_id TEXT,
    device_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    node_id    TEXT,
    bytes_up   BIGINT NOT NULL,
    bytes_down BIGINT NOT NULL,
    at         BIGINT NOT NULL
);

-- Hot counters for quota checks, per user and hour, kept apart from the user rows.
CREATE TABLE usage_counters (
    user_id    TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    PRIMARY KEY (user_id, hour_start)
);

-- Roll-ups of the ledger per hour and per day, for reports by device, user, node and group.
CREATE TABLE usage_rollups (
    granularity  TEXT NOT NULL CHECK (granularity IN ('hour', 'day')),
    bucket_start BIGINT NOT NULL,
    device_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    node_id      TEXT NOT NULL,
    bytes_up     BIGINT NOT NULL,
    bytes_down   BIGINT NOT NULL,
    PRIMARY KEY (granularity, bucket_start, device_id, node_id)
);
CREATE INDEX usage_rollups_by_user ON usage_rollups (granularity, user_id, bucket_start);
CREATE INDEX usage_rollups_by_node ON usage_rollups (granularity, node_id, bucket_start);

CREATE TABLE job_state (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- The console: people who sign in (users), their sessions, API tokens, failed logins for
-- throttling, and the indexes search and the audit page need.

CREATE TABLE app_user (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,               -- viewer | operator | admin
    password_hash TEXT NOT NULL,               -- argon2id, in its PHC string form
    created_at    DOUBLE PRECISION NOT NULL
);

CREATE TABLE session (
    id_hash    TEXT PRIMARY KEY,               -- sha256 of the cookie's random id; the id itself is never stored
    user_name  TEXT NOT NULL REFERENCES app_user (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,                  -- the anti-CSRF token of this session
    created_at DOUBLE PRECISION NOT NULL,
    last_seen  DOUBLE PRECISION NOT NULL                   -- refreshed at most once a minute
);
CREATE INDEX session_by_user ON session (user_name);

CREATE TABLE api_token (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,           -- sha256 of the secret; the secret is shown once
    created_at DOUBLE PRECISION NOT NULL,
    created_by TEXT NOT NULL,
    last_used  DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);

CREATE TABLE login_failure (                   -- failed logins, per name given, for throttling
    name TEXT NOT NULL,
    at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX login_failure_name ON login_failure (name, at);

-- Search by any business key value, source id or cross-referenced key without a scan.
CREATE INDEX message_key_value ON message_key (value);
CREATE INDEX message_key_message ON message_key (message_id);
CREATE INDEX message_source_id ON message (source_id);
CREATE INDEX message_rejected ON message (system, id) WHERE state = 'rejected';
CREATE INDEX xref_key ON xref (key);
CREATE INDEX xref_other_key ON xref (other_key);
CREATE INDEX xref_delivery ON xref (delivery_id);
CREATE INDEX audit_at ON audit (at);
-- Charts count deliveries by when they were made (the column never changes: no cost to updates).
CREATE INDEX delivery_created_at ON delivery (created_at);

-- The journal on PostgreSQL: the same tables as on SQLite (migrations/0001_init.sql), with
-- PostgreSQL's types. Times are seconds since the epoch as double precision on both, so the
-- records crossing the Journal protocol are the same.

CREATE TABLE message (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system      TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    headers     BYTEA,                     -- JSON object of the headers kept; NULL once purged
    body        BYTEA,                     -- raw bytes as received; NULL once purged
    state       TEXT    NOT NULL DEFAULT 'received',   -- received | routed | rejected
    event       TEXT,
    reason      TEXT,
    UNIQUE (system, source_id)
);
CREATE INDEX message_unrouted ON message (id) WHERE state = 'received';
CREATE INDEX message_received_at ON message (received_at);

CREATE TABLE message_key (
    name       TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    message_id BIGINT NOT NULL,
    PRIMARY KEY (name, value, message_id)
);

-- Deliveries are updated several times each (leased, settled): leave room on each page for
-- HOT updates and let autovacuum visit often, since a busy hub makes dead tuples quickly.
CREATE TABLE delivery (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   BIGINT  NOT NULL REFERENCES message (id),
    flow         TEXT    NOT NULL,
    flow_version TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    key          TEXT,
    version      DOUBLE PRECISION,
    safe_retry   BOOLEAN NOT NULL,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    due_at       DOUBLE PRECISION NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    updated_at   DOUBLE PRECISION NOT NULL,
    lease_owner  TEXT,
    lease_until  DOUBLE PRECISION,
    lease_token  BIGINT  NOT NULL DEFAULT 0,   -- fencing token: an outcome is recorded only with the current one
    error_class  TEXT,
    last_error   TEXT,
    payload      BYTEA,
    replays      INTEGER NOT NULL DEFAULT 0
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0);
CREATE INDEX delivery_pending ON delivery (target, id) WHERE state = 'pending';
CREATE INDEX delivery_open_key ON delivery (flow, key, id) WHERE state IN ('pending', 'leased');
CREATE INDEX delivery_leased ON delivery (lease_until) WHERE state = 'leased';
CREATE INDEX delivery_state ON delivery (state, flow);
CREATE INDEX delivery_message ON delivery (message_id);

CREATE TABLE attempt (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id    BIGINT  NOT NULL REFERENCES delivery (id),
    started_at     DOUBLE PRECISION NOT NULL,
    duration       DOUBLE PRECISION NOT NULL,
    request        BYTEA,
    status         INTEGER,
    response       BYTEA,
    classification TEXT    NOT NULL,
    error          TEXT,
    flow_version   TEXT    NOT NULL
);
CREATE INDEX attempt_delivery ON attempt (delivery_id);
CREATE INDEX attempt_started_at ON attempt (started_at);

CREATE TABLE applied (
    flow    TEXT NOT NULL,
    key     TEXT NOT NULL,
    version DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (flow, key)
);

CREATE TABLE xref (
    entity       TEXT NOT NULL,
    system       TEXT NOT NULL,
    key          TEXT NOT NULL,
    other_system TEXT NOT NULL,
    other_key    TEXT NOT NULL,
    delivery_id  BIGINT,
    created_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (entity, system, key, other_system)
);
CREATE INDEX xref_other ON xref (entity, other_system, other_key);

CREATE TABLE cursor (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE audit (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     DOUBLE PRECISION NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);

-- The journal: messages as received, deliveries through flows, every attempt, and what
-- deliveries learnt (cross-references, applied versions), plus cursors and the audit log.

CREATE TABLE message (
    id          INTEGER PRIMARY KEY,
    system      TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    headers     BLOB,                      -- JSON object of the headers kept; NULL once purged
    body        BLOB,                      -- raw bytes as received; NULL once purged
    state       TEXT    NOT NULL DEFAULT 'received',   -- received | routed | rejected
    event       TEXT,
    reason      TEXT,                      -- why it was rejected
    UNIQUE (system, source_id)
);
CREATE INDEX message_unrouted ON message (id) WHERE state = 'received';
CREATE INDEX message_received_at ON message (received_at);

CREATE TABLE message_key (                 -- business keys for search: order number, SKU, email
    name       TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    message_id INTEGER NOT NULL,
    PRIMARY KEY (name, value, message_id)
) WITHOUT ROWID;

CREATE TABLE delivery (
    id          INTEGER PRIMARY KEY,
    message_id  INTEGER NOT NULL REFERENCES message (id),
    flow        TEXT    NOT NULL,
    flow_version TEXT   NOT NULL,
    target      TEXT    NOT NULL,
    key         TEXT,                      -- ordering key; NULL = unordered
    version     REAL,                      -- source version for stale skipping
    safe_retry  INTEGER NOT NULL,          -- 1 if the target applies a repeated idempotency key once
    state       TEXT    NOT NULL,          -- pending | leased | delivered | dead | review | skipped | discarded
    attempts    INTEGER NOT NULL DEFAULT 0,
    due_at      REAL    NOT NULL,
    created_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    lease_token INTEGER NOT NULL DEFAULT 0, -- fencing token: an outcome is recorded only with the current one
    error_class TEXT,
    last_error  TEXT,
    payload     BLOB,                      -- edited event data for a replay; NULL = decode the message
    replays     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX delivery_pending ON delivery (target, id) WHERE state = 'pending';
CREATE INDEX delivery_open_key ON delivery (flow, key, id) WHERE state IN ('pending', 'leased');
CREATE INDEX delivery_leased ON delivery (lease_until) WHERE state = 'leased';
CREATE INDEX delivery_state ON delivery (state, flow);
CREATE INDEX delivery_message ON delivery (message_id);

CREATE TABLE attempt (
    id             INTEGER PRIMARY KEY,
    delivery_id    INTEGER NOT NULL REFERENCES delivery (id),
    started_at     REAL    NOT NULL,
    duration       REAL    NOT NULL,
    request        BLOB,                   -- what was sent; NULL once purged
    status         INTEGER,                -- HTTP status, NULL if no answer
    response       BLOB,                   -- what came back; NULL once purged
    classification TEXT    NOT NULL,       -- delivered | transient | throttled | permanent | contract | unknown | bug | held
    error          TEXT,
    flow_version   TEXT    NOT NULL
);
CREATE INDEX attempt_delivery ON attempt (delivery_id);
CREATE INDEX attempt_started_at ON attempt (started_at);

CREATE TABLE applied (                     -- newest source version applied per flow and key
    flow    TEXT NOT NULL,
    key     TEXT NOT NULL,
    version REAL NOT NULL,
    PRIMARY KEY (flow, key)
) WITHOUT ROWID;

CREATE TABLE xref (                        -- Shopify order 450789469 = ERP sale 112
    entity       TEXT NOT NULL,
    system       TEXT NOT NULL,
    key          TEXT NOT NULL,
    other_system TEXT NOT NULL,
    other_key    TEXT NOT NULL,
    delivery_id  INTEGER,
    created_at   REAL NOT NULL,
    PRIMARY KEY (entity, system, key, other_system)
) WITHOUT ROWID;
CREATE INDEX xref_other ON xref (entity, other_system, other_key);

CREATE TABLE cursor (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL                   -- JSON; never secrets
);

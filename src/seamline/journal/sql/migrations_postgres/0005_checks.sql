-- Reconciliation runs and what they found; the flow versions that ran.

CREATE TABLE check_run (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    check_name    TEXT NOT NULL,
    started_at    DOUBLE PRECISION NOT NULL,
    seconds       DOUBLE PRECISION NOT NULL,
    left_rows     INTEGER NOT NULL,
    right_rows    INTEGER NOT NULL,
    agreed        INTEGER NOT NULL,
    missing_left  INTEGER NOT NULL,
    missing_right INTEGER NOT NULL,
    mismatch      INTEGER NOT NULL,
    duplicate     INTEGER NOT NULL,
    error         TEXT,                        -- why the run could not finish (a reader failed)
    actor         TEXT NOT NULL                -- who ran it: a user, a token, or the scheduler
);
CREATE INDEX check_run_by_name ON check_run (check_name, started_at);

CREATE TABLE check_finding (                   -- the first findings of a run (counts are whole)
    run_id       BIGINT NOT NULL REFERENCES check_run (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,                -- missing_left | missing_right | mismatch | duplicate
    key          TEXT NOT NULL,                -- the key's parts joined by /
    fields       TEXT NOT NULL,                -- what differs, joined by ,
    left_values  BYTEA,
    right_values BYTEA
);
CREATE INDEX check_finding_run ON check_finding (run_id, kind, key);

CREATE TABLE flow_version (                    -- every version of a flow that went live
    flow       TEXT NOT NULL,
    version    TEXT NOT NULL,                  -- content hash of the flow file and its mapping code
    content    BYTEA NOT NULL,                  -- those files, to compare and roll back to
    first_live DOUBLE PRECISION NOT NULL,
    deployed_by TEXT NOT NULL,
    PRIMARY KEY (flow, version)
);

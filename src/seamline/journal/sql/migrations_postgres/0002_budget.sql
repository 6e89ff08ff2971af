-- Budgets shared by every worker process (engine/budget.py, journal/ledger.py). UNLOGGED: a
-- budget is advice about the present, not a record to keep, so its changes skip the WAL and
-- the fsync; after a server crash the rows are gone and budgets start afresh (circuits closed,
-- buckets full), which is what a restart of a single-process hub does too.

CREATE UNLOGGED TABLE budget_state (
    target       TEXT PRIMARY KEY,
    tokens       DOUBLE PRECISION NOT NULL,
    at           DOUBLE PRECISION NOT NULL,
    held_until   DOUBLE PRECISION NOT NULL,
    failures     INTEGER NOT NULL,
    opened_at    DOUBLE PRECISION,
    cooldown     DOUBLE PRECISION NOT NULL,
    probe_until  DOUBLE PRECISION NOT NULL,
    opened_count INTEGER NOT NULL
);

-- Requests each process has in flight to each target; a row stops counting at `until`, so a
-- process that dies holding grants frees them after one lease.
CREATE UNLOGGED TABLE budget_use (
    target    TEXT NOT NULL,
    owner     TEXT NOT NULL,
    in_flight INTEGER NOT NULL,
    until     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (target, owner)
);

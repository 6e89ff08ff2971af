-- How many settled deliveries (delivered, skipped, discarded) each flow has in each state, kept
-- as they change (see the SQLite migration 0007). Each server process (one per writer
-- connection) adds to rows of its own (`shard` = its pid), so writers in different processes
-- never wait for each other's row locks, nor deadlock on them; readers sum the shards.
-- Statement-level triggers add a whole set statement's changes at once. Rows of server processes
-- that have ended are folded into shard 0 by the scheduler's hourly sweep (fold_tally).
--
-- Hubs of the previous version may still be settling deliveries while this runs: the lock keeps
-- their changes out until the triggers are in place, so the backfill and the triggers between
-- them see every one exactly once.
LOCK TABLE delivery IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE delivery_tally (
    flow  TEXT    NOT NULL,
    state TEXT    NOT NULL,
    shard INTEGER NOT NULL,
    n     BIGINT  NOT NULL,
    PRIMARY KEY (flow, state, shard)
);
INSERT INTO delivery_tally (flow, state, shard, n)
SELECT flow, state, 0, count(*) FROM delivery
WHERE state NOT IN ('pending', 'leased', 'dead', 'review') GROUP BY flow, state;

CREATE FUNCTION delivery_tally_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_tally (flow, state, shard, n)
    SELECT flow, state, pg_backend_pid(), count(*) FROM new_rows
    WHERE state NOT IN ('pending', 'leased', 'dead', 'review') GROUP BY flow, state
    ON CONFLICT (flow, state, shard) DO UPDATE SET n = delivery_tally.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION delivery_tally_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO delivery_tally (flow, state, shard, n)
    SELECT flow, state, pg_backend_pid(), sum(d)
    FROM (SELECT flow, state, 1 AS d FROM new_rows
          UNION ALL SELECT flow, state, -1 FROM old_rows) AS change
    WHERE state NOT IN ('pending', 'leased', 'dead', 'review')
    GROUP BY flow, state HAVING sum(d) <> 0
    ON CONFLICT (flow, state, shard) DO UPDATE SET n = delivery_tally.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER delivery_tally_insert AFTER INSERT ON delivery
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION delivery_tally_inserted();
CREATE TRIGGER delivery_tally_update AFTER UPDATE ON delivery
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION delivery_tally_updated();

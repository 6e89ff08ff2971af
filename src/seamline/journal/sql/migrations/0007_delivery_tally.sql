-- How many settled deliveries (delivered, skipped, discarded) each flow has in each state, kept
-- as they change. Status, the console and the alert loop (every 15 s) read it instead of counting
-- the whole delivery table, which only grows (retention purges payloads, not rows): at a million
-- deliveries that count took a second, in the hub's event loop. Open and failed deliveries
-- (pending, leased, dead, review) are still counted from the table by index: their ages matter,
-- and there are as many as the backlog holds. Here only a change into or out of a settled state
-- runs a trigger: once per delivery, at its end.
CREATE TABLE delivery_tally (
    flow  TEXT    NOT NULL,
    state TEXT    NOT NULL,
    shard INTEGER NOT NULL,              -- 0 here; on PostgreSQL each writer has rows of its own
    n     INTEGER NOT NULL,
    PRIMARY KEY (flow, state, shard)
);
INSERT INTO delivery_tally (flow, state, shard, n)
SELECT flow, state, 0, count(*) FROM delivery
WHERE state NOT IN ('pending', 'leased', 'dead', 'review') GROUP BY flow, state;

CREATE TRIGGER delivery_tally_insert AFTER INSERT ON delivery
WHEN NEW.state NOT IN ('pending', 'leased', 'dead', 'review')
BEGIN
    INSERT INTO delivery_tally (flow, state, shard, n) VALUES (NEW.flow, NEW.state, 0, 1)
    ON CONFLICT (flow, state, shard) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER delivery_tally_update AFTER UPDATE OF state ON delivery
WHEN OLD.state IS NOT NEW.state
 AND (OLD.state NOT IN ('pending', 'leased', 'dead', 'review')
      OR NEW.state NOT IN ('pending', 'leased', 'dead', 'review'))
BEGIN
    UPDATE delivery_tally SET n = n - 1 WHERE flow = OLD.flow AND state = OLD.state AND shard = 0;
    INSERT INTO delivery_tally (flow, state, shard, n)
    SELECT NEW.flow, NEW.state, 0, 1 WHERE NEW.state NOT IN ('pending', 'leased', 'dead', 'review')
    ON CONFLICT (flow, state, shard) DO UPDATE SET n = n + 1;
END;

-- The tally of settled deliveries (0007) is kept by the journal's own statements from here on,
-- one per (flow, state) for a whole batch. SQLite's triggers run once per row: measured, they
-- cost 20-45 us a delivery across insert, claim and settle, a quarter of the journal's work per
-- message. A worker process of the previous version may still be finishing its batch (its hub
-- died): it settles without the triggers and without counting. So the process that next holds
-- the deliveries (`expire_all_leases`, once that one has exited) counts the tally afresh.
DROP TRIGGER IF EXISTS delivery_tally_insert;
DROP TRIGGER IF EXISTS delivery_tally_update;
INSERT INTO cursor (name, value, updated_at)
VALUES ('journal:tally-recount', 'due', strftime('%s', 'now'))
ON CONFLICT (name) DO UPDATE SET value = 'due';

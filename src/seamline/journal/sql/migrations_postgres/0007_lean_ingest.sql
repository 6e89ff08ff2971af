-- Every index on message costs each webhook a B-tree insert and, for a random source id, a
-- page of its own in the commit. UNIQUE (system, source_id) already finds a source id, once
-- per system (messages_by_source_id), so the index on source_id alone goes.
DROP INDEX IF EXISTS message_source_id;

-- PostgreSQL checks a foreign key by locking the row it points to (FOR KEY SHARE), which
-- writes that row's header: a WAL record and a dirtied page per delivery (its message) and per
-- attempt (its delivery), on the busiest tables. Rows of message and delivery are never
-- deleted, and the journal writes each reference in the transaction that routed the message or
-- settled the delivery, so the checks guard nothing the code can break. SQLite keeps them,
-- where a check is an in-process B-tree lookup.
ALTER TABLE delivery DROP CONSTRAINT IF EXISTS delivery_message_id_fkey;
ALTER TABLE attempt DROP CONSTRAINT IF EXISTS attempt_delivery_id_fkey;

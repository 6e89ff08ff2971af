-- The PostgreSQL journal runs the SQLite journal's named queries (queries.sql), with `:name`
-- parameters written as `%(name)s`, except the blocks below, where the dialects differ.
-- Arrays go in binary (`%(name)b`): psycopg writes a text array element by element in Python,
-- with a regular expression to decide quoting, ~5x the work (0.75 against 0.16 us a string,
-- 1.0 against 0.13 a float; bench/README.md, stop 25).

-- insert_messages: append a group of received messages in one statement (group commit)
INSERT INTO message (system, source_id, received_at, headers, body)
SELECT * FROM unnest(%(systems)b::text[], %(source_ids)b::text[], %(received)b::float8[],
                     %(headers)b::bytea[], %(bodies)b::bytea[])
ON CONFLICT (system, source_id) DO NOTHING
RETURNING id, system, source_id;

-- insert_routed_messages: the same, each with the verdict of the router that routed it as it
-- arrived (state routed or rejected, event, reason), or state received for the scheduler
INSERT INTO message (system, source_id, received_at, headers, body, state, event, reason)
SELECT * FROM unnest(%(systems)b::text[], %(source_ids)b::text[], %(received)b::float8[],
                     %(headers)b::bytea[], %(bodies)b::bytea[], %(states)b::text[],
                     %(events)b::text[], %(reasons)b::text[])
ON CONFLICT (system, source_id) DO NOTHING
RETURNING id, system, source_id;

-- insert_message_key: a business key of a message, for search
INSERT INTO message_key (name, value, message_id) VALUES (%(name)s, %(value)s, %(message_id)s)
ON CONFLICT DO NOTHING;

-- supersede_pending: coalescing; older pending values of a key give way to the newest
UPDATE delivery SET state = 'skipped', updated_at = %(now)s,
       last_error = 'superseded by a newer value (message ' || %(message_id)s::text || ')'
WHERE flow = %(flow)s AND key = %(key)s AND state = 'pending';

-- claim_deliveries: lease due deliveries of one target, only the head of each ordering key
-- (of its flow, and of the flow it is ordered after), skipping rows another worker is
-- claiming right now rather than waiting for them. The update finds the picked rows by id
-- (ARRAY(...): the primary key, whatever the statistics say). Joined to `picked` with
-- `state = 'pending'` repeated, a planner that took the table for nearly empty (statistics of
-- a new hub) scanned the pending index once and `picked` once per row: 10 ms for 192 rows
-- (auto_explain during bench/postgres.py, bench/README.md stop 26). The rows stay pending:
-- `picked` locked them, and the lock re-checked each row's own conditions on its newest
-- version.
WITH picked AS (
    SELECT d.id FROM delivery d
    WHERE d.target = %(target)s AND d.state = 'pending' AND d.due_at <= %(now)s
      AND (d.key IS NULL OR NOT EXISTS (
            SELECT 1 FROM delivery e
            WHERE e.flow IN (d.flow, d.waits_for) AND e.key = d.key AND e.id < d.id
              AND e.state IN ('pending', 'leased')))
    ORDER BY d.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
UPDATE delivery
SET state = 'leased', lease_owner = %(owner)s, lease_until = %(until)s,
    lease_token = lease_token + 1, updated_at = %(now)s
FROM message m
WHERE delivery.id = ANY(ARRAY(SELECT id FROM picked)) AND m.id = delivery.message_id
RETURNING delivery.id, message_id, flow, flow_version, key, version, attempts, lease_token,
          created_at, payload, m.system, m.headers, m.body;

-- claimed_messages: the journaled messages behind deliveries (the claim above returns them
-- itself, this is the same read by ids)
SELECT id, system, headers, body FROM message WHERE id = ANY(%(ids)b::bigint[]);

-- record_applied: remember the newest source version applied for a key
INSERT INTO applied (flow, key, version) VALUES (%(flow)s, %(key)s, %(version)s)
ON CONFLICT (flow, key) DO UPDATE SET version = greatest(applied.version, excluded.version);

-- lock_migrations: one process at a time migrates the schema
SELECT pg_advisory_xact_lock(4242000001);

-- delivery_source: an edited payload, or the message a delivery was routed from
SELECT d.payload, m.id, m.system, m.headers, m.body
FROM delivery d JOIN message m ON m.id = d.message_id WHERE d.id = %(id)s;

-- notify: tell listening processes what changed (sent by the server at commit)
SELECT pg_notify(%(channel)s, %(what)s);

-- lock_keys: make deliveries of these ordering keys one transaction at a time (until the
-- commit), taking the locks in one order everywhere so that two routers never wait for each
-- other in a circle (4243: the key locks' own space among advisory locks)
SELECT pg_advisory_xact_lock(4243, h)
FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest(%(keys)b::text[]) AS k ORDER BY 1) AS wanted;

-- try_scheduler_lock: become the scheduler if nobody is
SELECT pg_try_advisory_lock(%(key)s);

-- budget_lock: a target's budget, locked for one transition, with the database's clock
SELECT tokens, at, held_until, failures, opened_at, cooldown, probe_until, opened_count,
       extract(epoch FROM clock_timestamp())::float8 AS now
FROM budget_state WHERE target = %(target)s FOR UPDATE;

-- budget_others: requests other processes have in flight to a target; a statement of its own,
-- after budget_lock, so that its snapshot sees what the previous holder of the lock committed
SELECT coalesce(sum(in_flight), 0)::int AS others FROM budget_use
WHERE target = %(target)s AND owner <> %(owner)s
  AND until > extract(epoch FROM clock_timestamp());

-- budget_create: a target's budget, the first time any process uses it
INSERT INTO budget_state (target, tokens, at, held_until, failures, opened_at, cooldown,
                          probe_until, opened_count)
VALUES (%(target)s, %(tokens)s, %(at)s, %(held_until)s, %(failures)s, %(opened_at)s,
        %(cooldown)s, %(probe_until)s, %(opened_count)s)
ON CONFLICT (target) DO NOTHING;

-- budget_save: the budget after a transition, and what this process has in flight now
WITH saved AS (
    UPDATE budget_state SET tokens = %(tokens)s, at = %(at)s, held_until = %(held_until)s,
           failures = %(failures)s, opened_at = %(opened_at)s, cooldown = %(cooldown)s,
           probe_until = %(probe_until)s, opened_count = %(opened_count)s
    WHERE target = %(target)s)
INSERT INTO budget_use (target, owner, in_flight, until)
VALUES (%(target)s, %(owner)s, %(in_flight)s, %(until)s)
ON CONFLICT (target, owner) DO UPDATE SET in_flight = excluded.in_flight, until = excluded.until;

-- The router's and the workers' statements over many rows, a set at a time: one round trip
-- each, whatever the batch size. Parameters are arrays, one per column (`_many`).

-- insert_message_key_set: business keys of messages, for search
INSERT INTO message_key (name, value, message_id)
SELECT * FROM unnest(%(name)b::text[], %(value)b::text[], %(message_id)b::bigint[])
ON CONFLICT DO NOTHING;

-- mark_rejected_set: messages that broke their source's contract
UPDATE message m SET state = 'rejected', event = r.event, reason = r.reason
FROM unnest(%(id)b::bigint[], %(event)b::text[], %(reason)b::text[]) AS r (id, event, reason)
WHERE m.id = r.id AND m.state = 'received';

-- mark_routed_set: messages decoded, about to get their deliveries; the ids still waiting
UPDATE message m SET state = 'routed', event = r.event, reason = NULL
FROM unnest(%(id)b::bigint[], %(event)b::text[]) AS r (id, event)
WHERE m.id = r.id AND m.state = 'received'
RETURNING m.id;

-- insert_delivery_set: messages travelling through flows, in the order given (ids follow it:
-- per-key ordering goes by delivery id)
INSERT INTO delivery (message_id, flow, flow_version, target, key, version, safe_retry,
                      waits_for, state, due_at, created_at, updated_at)
SELECT message_id, flow, flow_version, target, key, version, safe_retry, waits_for, 'pending',
       %(now)s, %(now)s, %(now)s
FROM unnest(%(message_id)b::bigint[], %(flow)b::text[], %(flow_version)b::text[],
            %(target)b::text[], %(key)b::text[], %(version)b::float8[], %(safe_retry)b::bool[],
            %(waits_for)b::text[])
     WITH ORDINALITY
     AS d (message_id, flow, flow_version, target, key, version, safe_retry, waits_for, n)
ORDER BY n;

-- settle_delivery_set: claimed deliveries' outcomes, each fenced by its lease token; the ids
-- recorded
UPDATE delivery d
SET state = s.state, attempts = d.attempts + s.spent, due_at = s.due_at,
    error_class = s.error_class, last_error = s.error, lease_owner = NULL, lease_until = NULL,
    updated_at = %(now)s
FROM unnest(%(id)b::bigint[], %(token)b::bigint[], %(state)b::text[], %(spent)b::int[],
            %(due_at)b::float8[], %(error_class)b::text[], %(error)b::text[])
     AS s (id, token, state, spent, due_at, error_class, error)
WHERE d.id = s.id AND d.lease_token = s.token AND d.state = 'leased'
RETURNING d.id;

-- insert_attempt_set: tries of deliveries, as they happened on the wire
INSERT INTO attempt (delivery_id, started_at, duration, request, status, response,
                     classification, error, flow_version, body_start, body_end)
SELECT * FROM unnest(%(delivery_id)b::bigint[], %(started_at)b::float8[], %(duration)b::float8[],
                     %(request)b::bytea[], %(status)b::int[], %(response)b::bytea[],
                     %(classification)b::text[], %(error)b::text[], %(flow_version)b::text[],
                     %(body_start)b::int[], %(body_end)b::int[]);

-- record_applied_set: the newest source version applied per key (a key twice in one set is
-- one row: ON CONFLICT may touch a row only once per statement)
INSERT INTO applied (flow, key, version)
SELECT flow, key, max(version)
FROM unnest(%(flow)b::text[], %(key)b::text[], %(version)b::float8[]) AS a (flow, key, version)
GROUP BY flow, key
ON CONFLICT (flow, key) DO UPDATE SET version = greatest(applied.version, excluded.version);

-- upsert_xref_set: what deliveries learnt about entities in other systems; the last word wins
INSERT INTO xref (entity, system, key, other_system, other_key, delivery_id, created_at)
SELECT DISTINCT ON (entity, system, key, other_system)
       entity, system, key, other_system, other_key, delivery_id, %(now)s
FROM unnest(%(entity)b::text[], %(system)b::text[], %(key)b::text[], %(other_system)b::text[],
            %(other_key)b::text[], %(delivery_id)b::bigint[])
     WITH ORDINALITY AS x (entity, system, key, other_system, other_key, delivery_id, n)
ORDER BY entity, system, key, other_system, n DESC
ON CONFLICT (entity, system, key, other_system)
DO UPDATE SET other_key = excluded.other_key, delivery_id = excluded.delivery_id;

-- chart_received: deliveries made per time bucket since a time
SELECT floor(created_at / %(bucket)s)::bigint AS bucket, count(*) AS n
FROM delivery WHERE created_at >= %(since)s GROUP BY 1;

-- chart_attempts: attempts per time bucket and outcome, with their durations
SELECT floor(started_at / %(bucket)s)::bigint AS bucket, classification, count(*) AS n,
       avg(duration) AS mean, max(duration) AS longest
FROM attempt WHERE started_at >= %(since)s GROUP BY 1, 2;

-- chart_backlog: deliveries open at some time in the window, by the bucket they were made in
-- and the bucket they were settled in (none: still open)
SELECT floor(created_at / %(bucket)s)::bigint AS born,
       CASE WHEN state IN ('pending', 'leased') THEN NULL
            ELSE floor(updated_at / %(bucket)s)::bigint END AS gone,
       count(*) AS n
FROM delivery WHERE state IN ('pending', 'leased') OR updated_at >= %(since)s
GROUP BY 1, 2;

-- fold_tally: the tally rows of server processes that have ended, added into shard 0 (each
-- process writes rows of its own, and without this the rows would pile up, one set per
-- connection ever made)
WITH gone AS (
    DELETE FROM delivery_tally
    WHERE shard <> 0 AND shard NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
    RETURNING flow, state, n)
INSERT INTO delivery_tally (flow, state, shard, n)
SELECT flow, state, 0, sum(n) FROM gone GROUP BY flow, state
ON CONFLICT (flow, state, shard) DO UPDATE SET n = delivery_tally.n + excluded.n;

-- expire_leases: leases past their time go back to pending, or to review where a repeat is
-- unsafe. Rows another session holds locked are skipped, not waited for: a worker frozen in
-- its settle holds them until the server ends its session (idle_in_transaction_session_timeout),
-- and the scheduler's writer, which routes too, must not wait that long. The next sweep
-- takes them. ARRAY(...) runs the locking scan once: as `id IN (SELECT ...)` the planner,
-- expecting one row, reran it for every row (8,000 expired leases: 8.4 s instead of 0.2).
UPDATE delivery
SET state = CASE WHEN safe_retry THEN 'pending' ELSE 'review' END,
    error_class = CASE WHEN safe_retry THEN error_class ELSE 'unknown' END,
    last_error = CASE WHEN safe_retry THEN last_error
                 ELSE 'lease expired while the request may have been sent: outcome unknown' END,
    lease_owner = NULL, lease_until = NULL, updated_at = %(now)s
WHERE id = ANY(ARRAY(
    SELECT id FROM delivery WHERE state = 'leased' AND lease_until < %(now)s
    FOR UPDATE SKIP LOCKED
)) AND state = 'leased' AND lease_until < %(now)s
RETURNING id;

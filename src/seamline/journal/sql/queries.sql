-- Named queries of the SQLite journal. Each block starts with `-- name: what it does`.
-- The PostgreSQL journal keeps the same names where the dialects allow.

-- insert_message: append a received message unless its source id was already journaled
INSERT INTO message (system, source_id, received_at, headers, body)
VALUES (:system, :source_id, :received_at, :headers, :body)
ON CONFLICT (system, source_id) DO NOTHING
RETURNING id;

-- unrouted_messages: messages journaled but not yet decoded and routed, oldest first
SELECT id, system, source_id, received_at, headers, body
FROM message WHERE state = 'received' AND received_at < :before ORDER BY id LIMIT :limit;

-- mark_routed: a message was decoded and got its deliveries
UPDATE message SET state = 'routed', event = :event, reason = NULL
WHERE id = :id AND state = 'received';

-- mark_rejected: a message broke its source's contract
UPDATE message SET state = 'rejected', event = :event, reason = :reason
WHERE id = :id AND state = 'received';

-- insert_message_key: a business key of a message, for search
INSERT OR IGNORE INTO message_key (name, value, message_id) VALUES (:name, :value, :message_id);

-- supersede_pending: coalescing; older pending values of a key give way to the newest
UPDATE delivery SET state = 'skipped', updated_at = :now,
       last_error = 'superseded by a newer value (message ' || :message_id || ')'
WHERE flow = :flow AND key = :key AND state = 'pending';

-- insert_delivery: one message travelling through one flow
INSERT INTO delivery (message_id, flow, flow_version, target, key, version, safe_retry,
                      waits_for, state, due_at, created_at, updated_at)
VALUES (:message_id, :flow, :flow_version, :target, :key, :version, :safe_retry, :waits_for,
        'pending', :now, :now, :now);

-- due_deliveries: due deliveries of one target that may be leased now, only the head of each
-- ordering key (of its flow, and of the flow it is ordered after). The SQLite journal leases
-- them by id (`journal/sqlite.py`), PostgreSQL in one statement (claim_deliveries)
SELECT d.id FROM delivery d
WHERE d.target = :target AND d.state = 'pending' AND d.due_at <= :now
  AND (d.key IS NULL OR NOT EXISTS (
        SELECT 1 FROM delivery e
        WHERE e.flow IN (d.flow, d.waits_for) AND e.key = d.key AND e.id < d.id
          AND e.state IN ('pending', 'leased')))
ORDER BY d.id
LIMIT :limit;

-- claimed_messages: the journaled messages behind claimed deliveries
SELECT id, system, headers, body FROM message WHERE id IN (SELECT value FROM json_each(:ids));

-- applied_version: newest source version applied for a flow and key
SELECT version FROM applied WHERE flow = :flow AND key = :key;

-- skip_delivery: a claimed delivery is not sent, and why
UPDATE delivery SET state = 'skipped', last_error = :reason, lease_owner = NULL,
       lease_until = NULL, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'leased';

-- settle_delivery: record a claimed delivery's outcome, fenced by its lease token
UPDATE delivery
SET state = :state, attempts = attempts + :spent, due_at = :due_at, error_class = :error_class,
    last_error = :error, lease_owner = NULL, lease_until = NULL, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'leased';

-- insert_attempt: one try of a delivery, as it happened on the wire
INSERT INTO attempt (delivery_id, started_at, duration, request, status, response,
                     classification, error, flow_version, body_start, body_end)
VALUES (:delivery_id, :started_at, :duration, :request, :status, :response,
        :classification, :error, :flow_version, :body_start, :body_end);

-- record_applied: remember the newest source version applied for a key
INSERT INTO applied (flow, key, version) VALUES (:flow, :key, :version)
ON CONFLICT (flow, key) DO UPDATE SET version = max(version, excluded.version);

-- upsert_xref: what a delivery learnt about the same entity in another system
INSERT INTO xref (entity, system, key, other_system, other_key, delivery_id, created_at)
VALUES (:entity, :system, :key, :other_system, :other_key, :delivery_id, :now)
ON CONFLICT (entity, system, key, other_system)
DO UPDATE SET other_key = excluded.other_key, delivery_id = excluded.delivery_id;

-- expire_leases: leases past their time go back to pending, or to review where a repeat is unsafe
UPDATE delivery
SET state = CASE WHEN safe_retry THEN 'pending' ELSE 'review' END,
    error_class = CASE WHEN safe_retry THEN error_class ELSE 'unknown' END,
    last_error = CASE WHEN safe_retry THEN last_error
                 ELSE 'lease expired while the request may have been sent: outcome unknown' END,
    lease_owner = NULL, lease_until = NULL, updated_at = :now
WHERE state = 'leased' AND lease_until < :now
RETURNING id;

-- unlease_delivery: a claim whose deliveries could not be handed to the worker gives them back
-- (nothing was sent), fenced by its lease token
UPDATE delivery SET state = 'pending', lease_owner = NULL, lease_until = NULL, updated_at = :now
WHERE id = :id AND lease_token = :token AND state = 'leased';

-- pending_targets: the target systems pending deliveries wait for
SELECT DISTINCT target FROM delivery WHERE state = 'pending';

-- dead_without_target: pending deliveries to a target system no flow delivers to any more
-- become dead letters (replayed once it is back, or discarded), :limit at a time. The outer
-- conditions are repeated so that PostgreSQL re-checks a row another process changed meanwhile.
UPDATE delivery SET state = 'dead', error_class = 'contract', last_error = :reason, updated_at = :now
WHERE id IN (SELECT id FROM delivery WHERE target = :target AND state = 'pending' LIMIT :limit)
  AND target = :target AND state = 'pending';

-- release_held: after a target recovers, deliveries waiting out its outage are due now,
-- :limit at a time, outer conditions repeated as above
UPDATE delivery SET due_at = :now
WHERE id IN (SELECT id FROM delivery
             WHERE target = :target AND state = 'pending' AND due_at > :now
               AND error_class IN ('transient', 'held', 'throttled')
             LIMIT :limit)
  AND target = :target AND state = 'pending' AND due_at > :now;

-- replay_deliveries: send deliveries again with the flow version live now
UPDATE delivery
SET state = 'pending', due_at = :now, attempts = 0, replays = replays + 1,
    flow_version = coalesce(:flow_version, flow_version),
    payload = coalesce(:payload, payload), last_error = NULL, error_class = NULL, updated_at = :now
WHERE id = :id AND state IN ('dead', 'review', 'skipped', 'discarded');

-- order_after: a flow's deliveries not yet delivered wait for the flow its live version is
-- ordered after (ordering.after), whatever it was when they were routed
UPDATE delivery SET waits_for = :after
WHERE flow = :flow AND state IN ('pending', 'leased', 'dead', 'review', 'skipped', 'discarded')
  AND coalesce(waits_for, '') <> coalesce(:after, '');

-- discard_delivery: an operator decides a delivery will not be sent; its flow
UPDATE delivery SET state = 'discarded', last_error = :reason, updated_at = :now
WHERE id = :id AND state IN ('dead', 'review', 'pending')
RETURNING flow;

-- rereceive_message: a rejected message is decoded and routed again (after a fix)
UPDATE message SET state = 'received', reason = NULL WHERE id = :id AND state = 'rejected';

-- insert_audit: one operator action
INSERT INTO audit (at, actor, action, target, detail) VALUES (:at, :actor, :action, :target, :detail);

-- purge_message_payloads: retention; bodies go, ids, keys and outcomes stay
UPDATE message SET body = NULL, headers = NULL
WHERE id IN (SELECT id FROM message WHERE received_at < :before AND body IS NOT NULL LIMIT :limit);

-- purge_attempt_payloads: retention for what was sent and received
UPDATE attempt SET request = NULL, response = NULL
WHERE id IN (SELECT id FROM attempt WHERE started_at < :before AND request IS NOT NULL LIMIT :limit);

-- flow_counts: deliveries per flow and state. Settled ones from the tally, whatever the table's
-- size, open and failed ones counted by index, with retrying split out and the oldest.
SELECT flow, state, CAST(sum(n) AS BIGINT) AS n, CAST(NULL AS DOUBLE PRECISION) AS oldest
FROM delivery_tally
WHERE state NOT IN ('pending', 'leased', 'dead', 'review')
GROUP BY flow, state HAVING sum(n) <> 0
UNION ALL
SELECT flow, CASE WHEN state = 'pending' AND attempts > 0 THEN 'retrying' ELSE state END,
       count(*), min(created_at)
FROM delivery WHERE state IN ('pending', 'leased', 'dead', 'review') GROUP BY 1, 2;

-- rejected_counts: rejected messages per system
SELECT system, count(*) AS n, min(received_at) AS oldest FROM message WHERE state = 'rejected'
GROUP BY system;

-- get_cursor: a named cursor's value
SELECT value FROM cursor WHERE name = :name;

-- set_cursor: advance a named cursor
INSERT INTO cursor (name, value, updated_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;

-- delivery_source: an edited payload, or the message a delivery was routed from
SELECT d.payload, m.id, m.system, m.headers, m.body
FROM delivery d JOIN message m ON m.id = d.message_id WHERE d.id = :id;


-- insert_user: a person who may sign in; nothing if the name is taken
INSERT INTO app_user (name, role, password_hash, created_at)
VALUES (:name, :role, :password_hash, :now)
ON CONFLICT (name) DO NOTHING;

-- get_user: a user with the password hash, for signing in
SELECT name, role, password_hash, created_at FROM app_user WHERE name = :name;

-- list_users: every user, without password hashes
SELECT u.name, u.role, u.created_at,
       (SELECT max(s.last_seen) FROM session s WHERE s.user_name = u.name) AS last_seen
FROM app_user u ORDER BY u.name;

-- delete_user_sessions: a removed user is signed out everywhere
DELETE FROM session WHERE user_name = :name;

-- delete_user: a user may no longer sign in
DELETE FROM app_user WHERE name = :name;

-- count_login_failures: failed logins for a name since a time (throttling)
SELECT count(*) FROM login_failure WHERE name = :name AND at > :since;

-- insert_login_failure: a failed login, for a name that may or may not exist
INSERT INTO login_failure (name, at) VALUES (:name, :at);

-- clear_login_failures: a successful login starts the count afresh
DELETE FROM login_failure WHERE name = :name;

-- prune_login_failures: failures older than the throttling window are forgotten
DELETE FROM login_failure WHERE at < :before;

-- insert_session: a signed-in browser, known by the hash of its cookie
INSERT INTO session (id_hash, user_name, csrf, created_at, last_seen)
VALUES (:id_hash, :user_name, :csrf, :now, :now);

-- get_session: a session with its user's current role
SELECT s.user_name, u.role, s.csrf, s.created_at, s.last_seen
FROM session s JOIN app_user u ON u.name = s.user_name WHERE s.id_hash = :id_hash;

-- touch_session: the session was used (written at most once a minute)
UPDATE session SET last_seen = :now WHERE id_hash = :id_hash;

-- delete_session: sign out, or rotate at login
DELETE FROM session WHERE id_hash = :id_hash;

-- purge_sessions: sessions idle too long or too old
DELETE FROM session WHERE last_seen < :idle_before OR created_at < :born_before;

-- insert_token: an API token, known by the hash of its secret
INSERT INTO api_token (name, role, token_hash, created_at, created_by)
VALUES (:name, :role, :token_hash, :now, :actor)
RETURNING id;

-- get_token: a live (not revoked) token by the hash of its secret
SELECT id, name, role, last_used FROM api_token
WHERE token_hash = :token_hash AND revoked_at IS NULL;

-- touch_token: the token was used (written at most once a minute)
UPDATE api_token SET last_used = :now WHERE id = :id;

-- revoke_token: the token is refused from its next request on
UPDATE api_token SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL;

-- list_tokens: every token, without hashes
SELECT id, name, role, created_at, created_by, last_used, revoked_at FROM api_token ORDER BY id;


-- audit_page: the audit log, newest first, a page before an id
SELECT id, at, actor, action, target, detail FROM audit WHERE id < :before
ORDER BY id DESC LIMIT :limit;

-- messages_by_key: messages carrying a business key value (order number, SKU, email, ...)
SELECT message_id FROM message_key WHERE value = :value ORDER BY message_id LIMIT :limit;

-- messages_by_source_id: messages by the id their source gave them
-- Through UNIQUE (system, source_id), once for each system: the systems are walked from one
-- to the next in that index (a loose index scan), never by reading every message.
WITH RECURSIVE systems (system) AS (
  SELECT min(system) FROM message
  UNION ALL
  SELECT (SELECT min(m.system) FROM message m WHERE m.system > s.system)
  FROM systems s WHERE s.system IS NOT NULL
)
SELECT id FROM message
WHERE system IN (SELECT system FROM systems WHERE system IS NOT NULL) AND source_id = :value
ORDER BY id LIMIT :limit;

-- deliveries_by_xref: deliveries that learnt a key (ERP sale 112 = shop order 450789469)
SELECT delivery_id FROM xref WHERE (key = :value OR other_key = :value)
  AND delivery_id IS NOT NULL LIMIT :limit;

-- delivery_row: one delivery, every column an operator may read
SELECT d.id, d.message_id, d.flow, d.flow_version, d.target, d.key, d.version, d.safe_retry,
       d.state, d.attempts, d.due_at, d.created_at, d.updated_at, d.error_class, d.last_error,
       d.payload, d.replays, d.lease_owner, d.lease_until
FROM delivery d WHERE d.id = :id;

-- message_row: one message as received
SELECT id, system, source_id, received_at, headers, body, state, event, reason
FROM message WHERE id = :id;

-- dead_groups: dead deliveries and those needing review, grouped by cause (flow, error class)
SELECT state, flow, coalesce(error_class, '') AS error_class, count(*) AS n,
       min(updated_at) AS first_at, max(updated_at) AS last_at, max(id) AS newest
FROM delivery WHERE state IN ('dead', 'review')
GROUP BY state, flow, coalesce(error_class, '') ORDER BY n DESC, flow;

-- rejected_groups: rejected messages grouped by cause (system, reason)
SELECT system, coalesce(event, '') AS event, coalesce(reason, '') AS reason, count(*) AS n,
       min(received_at) AS first_at, max(received_at) AS last_at, max(id) AS newest
FROM message WHERE state = 'rejected'
GROUP BY system, coalesce(event, ''), coalesce(reason, '') ORDER BY n DESC, system LIMIT 200;

-- chart_received: deliveries made per time bucket since a time
SELECT CAST(created_at / :bucket AS INTEGER) AS bucket, count(*) AS n
FROM delivery WHERE created_at >= :since GROUP BY 1;

-- chart_attempts: attempts per time bucket and outcome, with their durations
SELECT CAST(started_at / :bucket AS INTEGER) AS bucket, classification, count(*) AS n,
       avg(duration) AS mean, max(duration) AS longest
FROM attempt WHERE started_at >= :since GROUP BY 1, 2;

-- insert_check_run: one run of a check, with its counts
INSERT INTO check_run (check_name, started_at, seconds, left_rows, right_rows, agreed,
                       missing_left, missing_right, mismatch, duplicate, error, actor)
VALUES (:check_name, :started_at, :seconds, :left_rows, :right_rows, :agreed,
        :missing_left, :missing_right, :mismatch, :duplicate, :error, :actor)
RETURNING id;

-- insert_check_finding: one finding of a run
INSERT INTO check_finding (run_id, kind, key, fields, left_values, right_values)
VALUES (:run_id, :kind, :key, :fields, :left_values, :right_values);

-- check_runs: the latest runs of a check (or of every check), newest first
SELECT id, check_name, started_at, seconds, left_rows, right_rows, agreed, missing_left,
       missing_right, mismatch, duplicate, error, actor
FROM check_run WHERE (CAST(:check_name AS TEXT) IS NULL OR check_name = :check_name)
ORDER BY started_at DESC, id DESC LIMIT :limit;

-- check_findings: what a run found, by kind and key
SELECT kind, key, fields, left_values, right_values FROM check_finding
WHERE run_id = :run_id ORDER BY kind, key LIMIT :limit;

-- record_flow_version: a flow version goes live (kept the first time, its last time updated)
INSERT INTO flow_version (flow, version, content, first_live, deployed_by, last_live)
VALUES (:flow, :version, :content, :now, :actor, :now)
ON CONFLICT (flow, version) DO UPDATE SET last_live = excluded.last_live;

-- flow_versions: the versions of a flow (or of every flow), the one live last first
SELECT flow, version, first_live, deployed_by, last_live FROM flow_version
WHERE (CAST(:flow AS TEXT) IS NULL OR flow = :flow)
ORDER BY coalesce(last_live, first_live) DESC, flow LIMIT :limit;

-- flow_version_content: the files of one version of a flow
SELECT content FROM flow_version WHERE flow = :flow AND version = :version;

-- recent_messages: the newest messages of a system that still hold their body, newest first
SELECT id, system, source_id, received_at, headers, body FROM message
WHERE system = :system AND body IS NOT NULL AND state = 'routed'
ORDER BY id DESC LIMIT :limit;

-- recorded_messages: a system's messages received in a time window still holding their body, oldest first
SELECT id, system, source_id, received_at, headers, body FROM message
WHERE system = :system AND body IS NOT NULL AND received_at >= :since AND received_at < :until
ORDER BY id LIMIT :limit;

-- flow_attempts: attempts per flow since a time, and how many of them failed
SELECT d.flow, count(*) AS attempts,
       sum(CASE WHEN a.classification = 'delivered' THEN 0 ELSE 1 END) AS failed
FROM attempt a JOIN delivery d ON d.id = a.delivery_id
WHERE a.started_at >= :since GROUP BY d.flow;

-- messages_with_key: a system's messages carrying a business key value, newest first
SELECT m.id, m.system, m.source_id, m.received_at, m.headers, m.body
FROM message_key k JOIN message m ON m.id = k.message_id
WHERE k.value = :value AND m.system = :system AND m.body IS NOT NULL
ORDER BY m.id DESC LIMIT :limit;

-- chart_backlog: deliveries open at some time in the window, by the bucket they were made in
-- and the bucket they were settled in (none: still open)
SELECT CAST(created_at / :bucket AS INTEGER) AS born,
       CASE WHEN state IN ('pending', 'leased') THEN NULL
            ELSE CAST(updated_at / :bucket AS INTEGER) END AS gone,
       count(*) AS n
FROM delivery WHERE state IN ('pending', 'leased') OR updated_at >= :since
GROUP BY 1, 2;

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
INSERT INTO delivery (message_id, flow, flow_version, target, key, version, safe_retry, state,
                      due_at, created_at, updated_at)
VALUES (:message_id, :flow, :flow_version, :target, :key, :version, :safe_retry, 'pending',
        :now, :now, :now);

-- claim_deliveries: lease due deliveries of one target, only the head of each ordering key
UPDATE delivery
SET state = 'leased', lease_owner = :owner, lease_until = :until,
    lease_token = lease_token + 1, updated_at = :now
WHERE id IN (
    SELECT d.id FROM delivery d
    WHERE d.target = :target AND d.state = 'pending' AND d.due_at <= :now
      AND (d.key IS NULL OR NOT EXISTS (
            SELECT 1 FROM delivery e
            WHERE e.flow = d.flow AND e.key = d.key AND e.id < d.id
              AND e.state IN ('pending', 'leased')))
    ORDER BY d.id
    LIMIT :limit)
RETURNING id, message_id, flow, flow_version, key, version, attempts, lease_token, created_at,
          payload;

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
                     classification, error, flow_version)
VALUES (:delivery_id, :started_at, :duration, :request, :status, :response,
        :classification, :error, :flow_version);

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

-- release_held: after a target recovers, deliveries waiting out its outage are due now
UPDATE delivery SET due_at = :now
WHERE target = :target AND state = 'pending' AND due_at > :now
  AND error_class IN ('transient', 'held', 'throttled');

-- replay_deliveries: send deliveries again with the flow version live now
UPDATE delivery
SET state = 'pending', due_at = :now, attempts = 0, replays = replays + 1,
    flow_version = coalesce(:flow_version, flow_version),
    payload = coalesce(:payload, payload), last_error = NULL, error_class = NULL, updated_at = :now
WHERE id = :id AND state IN ('dead', 'review', 'skipped', 'discarded');

-- discard_delivery: an operator decides a delivery will not be sent
UPDATE delivery SET state = 'discarded', last_error = :reason, updated_at = :now
WHERE id = :id AND state IN ('dead', 'review', 'pending');

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

-- flow_counts: deliveries per flow and state, with retrying split out, and the oldest open
SELECT flow, CASE WHEN state = 'pending' AND attempts > 0 THEN 'retrying' ELSE state END AS state,
       count(*) AS n, min(created_at) AS oldest
FROM delivery GROUP BY 1, 2;

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

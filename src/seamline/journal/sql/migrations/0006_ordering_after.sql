-- A flow ordered after another (`ordering: {key: ..., after: other-flow}`): its delivery waits
-- while one of the other flow's, with the same key and a lower id, is still open. A sale's
-- cancellation waits for the sale's creation, not only for earlier cancellations.
ALTER TABLE delivery ADD COLUMN waits_for TEXT;

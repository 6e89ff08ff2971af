-- An attempt of a flow that forwards the source's data as received (no mapping) keeps its
-- request line in `request`, and where its body lies in the message's body: bytes
-- body_start up to body_end. The 3 KB body is not written a second time per delivery; the
-- journal puts the request together again when it is read.
ALTER TABLE attempt ADD COLUMN body_start INTEGER;
ALTER TABLE attempt ADD COLUMN body_end INTEGER;

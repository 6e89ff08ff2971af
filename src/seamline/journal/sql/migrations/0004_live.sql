-- When a flow version last went live (an apply, a rollback to it, a restart): the live version
-- of a flow is the one that went live last.
ALTER TABLE flow_version ADD COLUMN last_live REAL;
UPDATE flow_version SET last_live = first_live;

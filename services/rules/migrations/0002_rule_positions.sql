-- Which rule versions were live for an event is decided by the log's order (the gate's
-- protocol makes a rule event's position below a ticket event's exactly when the ticket's
-- writer saw it), not by clocks. Rows written before this column keep their time.
ALTER TABLE rules.rule_states ADD COLUMN position bigint;
CREATE INDEX rule_states_position ON rules.rule_states (position);

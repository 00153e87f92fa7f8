-- The approval gate (libs/rules/gate.py) brings its copy of the rules up to the log in every
-- ticket write: rule events after a position. A partial index keeps that one cheap probe
-- whatever the size of the log, and costs nothing on the appends of any other stream.
CREATE INDEX events_rule_streams ON eventstore.events (position) WHERE stream_id LIKE 'rule-%';

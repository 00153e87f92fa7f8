CREATE SCHEMA demo;
CREATE TABLE demo.totals (stream_id text PRIMARY KEY, total bigint NOT NULL, seen integer NOT NULL);
CREATE TABLE demo.handled_by (event_id uuid PRIMARY KEY, replica text NOT NULL);
CREATE TABLE demo.poison_attempts (event_id uuid PRIMARY KEY, attempts integer NOT NULL);

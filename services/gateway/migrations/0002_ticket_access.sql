-- Who may see a ticket's live events: its requester (staff see all). From ticket.created.
CREATE SCHEMA IF NOT EXISTS gateway;
CREATE TABLE gateway.ticket_access (
    stream_id     text PRIMARY KEY,
    requester_id  text NOT NULL
);

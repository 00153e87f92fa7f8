-- Ticket numbers come from a sequence: taking one holds no lock until commit, so creations run
-- concurrently (the `ticketkeys` stream serialised every creation from its number to its
-- commit). Numbers are unique and increasing, not gapless: a creation that fails after taking
-- its number leaves a gap, as Jira's keys do. A key's uniqueness is the store's: the ticket's
-- stream is created with "no stream yet". The sequence starts after every number already taken.
CREATE SEQUENCE tickets.ticket_numbers;
SELECT setval(
    'tickets.ticket_numbers',
    greatest(1, (SELECT coalesce(max(version), 0) FROM eventstore.events
                 WHERE stream_id = 'ticketkeys')),
    (SELECT coalesce(max(version), 0) FROM eventstore.events WHERE stream_id = 'ticketkeys') > 0
);

"""What more than one service needs to know about rules: the trigger table, the ticket as a
rule's conditions read it, and whether a rule version fires on an event (the shared evaluator
the rules service fires with and the tickets service takes the approval lock with)."""

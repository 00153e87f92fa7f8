"""`executor-people`: who holds which role and who is deactivated, into `executor.people`
(read by services/executor/people.py). Replayable."""

from __future__ import annotations

from libs.events.people_roles import people_roles

PEOPLE_PROJECTION = people_roles("executor-people", "executor.people")

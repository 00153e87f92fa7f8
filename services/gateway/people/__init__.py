"""People over HTTP: the routes, rate limits, session cookies, and the read model of sessions
and tokens that authenticates requests. People themselves are the people service's."""

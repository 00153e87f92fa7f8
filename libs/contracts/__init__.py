"""Typed request/reply contracts of the services, one module per service (`tickets.py`), each
imported by that service and by its callers (the gateway): method names, request and answer
models and the literals they use are written once, here."""

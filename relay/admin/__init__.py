"""Admin operations: what the REST API and the web console do, in one place.

Each operation takes an `AdminContext` (settings, stores, clock, the pinging deliverer) and
values already taken out of the HTTP request; it validates them (`validation`) and raises
the RelayError tree (NotFound, Conflict, InvalidInput). The REST handlers (relay.api) and
the console pages (relay.console) only translate HTTP to these calls and back.
"""

"""The long-running roles: poller, dispatcher, retry worker and their supervisor."""

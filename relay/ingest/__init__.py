"""Getting messages in: the MC5 client and the poller that turns pages into events."""

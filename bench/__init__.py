"""Benchmarks for relay: `python -m bench` (or `make bench`).

Modules:
    __main__   the command line: runs the scenarios, prints the table, writes the results
    machine    the machine and software description stored with every result
    procs      subprocesses (relay roles, simulator, receiver) with logs and peak RSS
    receiver   the fast webhook receiver (raw ASGI on uvicorn + httptools), its own process
    signing    Standard Webhooks signatures for the limit and naive clients
    limit      the machine's limit: a plain aiohttp client loop, 64 concurrent
    naive      the obvious alternative: one RQ job per delivery (SimpleWorker + httpx)
    upstream   the MC5 simulator process and the messages injected into it
    harness    one relay run: fresh key prefix, sources, subscriptions, role processes
    scenarios  throughput, latency, isolation, memory, scale-out
    stats      quantiles
    report     the printed table, the JSON file and the Markdown table
"""

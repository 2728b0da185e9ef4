"""Where RQ jobs queued by relay 0.1 look for their functions (`relay.jobs.retry_delivery`,
`relay.jobs.unpark_deliveries`). RQ stores a job's function as a dotted path, so jobs that
were already waiting in Redis when relay was upgraded still run; new jobs use
`relay.delivery.jobs`."""

from __future__ import annotations

from relay.delivery.jobs import retry_delivery, unpark_deliveries

__all__ = ["retry_delivery", "unpark_deliveries"]

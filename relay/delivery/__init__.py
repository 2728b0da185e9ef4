"""Getting webhooks out: the HTTP deliverer, what outcomes mean, the dispatcher of first
attempts, and the RQ jobs and worker of the retries."""

"""The domain: who may act (policy), passwords and tokens (security), log-in throttling,
what clients send and see (schemas and their views), and the repositories, the only
place SQL is written. It knows the platform below it, and nothing of requests."""

"""The platform: settings, tables, the database engine and its session kinds, readiness,
logs, metrics and the domain errors. It knows nothing of HTTP: no FastAPI, no Starlette,
no request. A route, the CLI, a test or a worker process use it alike."""

"""Configuration: environment variables (and an optional `.env`), read in one place."""

import re
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Good enough for a laptop, refused in production (see Settings._secret_key_fits).
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
# A web origin as a browser sends it in Origin: no path, no trailing slash.
ORIGIN = re.compile(r"https?://[^/?#\s]+")
# The scheme DATABASE_URL needs for each backend: its asyncio driver.
ASYNC_SCHEMES = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",  # the older name some hosting services give
    "sqlite": "sqlite+aiosqlite",
}


class Settings(BaseSettings):
    """Every knob the service has. Nothing else in the code reads `os.environ`."""

    # hide_input_in_errors: a refused value (a SECRET_KEY too short for production, a
    # DATABASE_URL with its password) is named in the error, never echoed.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Literal["development", "test", "production"] = "development"

    # Database. SQLite (aiosqlite) is the embedded default; PostgreSQL via asyncpg,
    # e.g. postgresql+asyncpg://user:password@host:5432/dbname
    database_url: str = "sqlite+aiosqlite:///./app.db"
    # The password of DATABASE_URL's user, given on its own: taken as it is, whatever
    # characters it holds (a password inside DATABASE_URL must be percent-encoded).
    # It replaces a password in the URL. Engines connect to `engine_url`.
    database_password: SecretStr | None = None
    # Streaming replicas of DATABASE_URL's server that public reads may use: URLs, comma-
    # separated (DATABASE_PASSWORD applies to them too). Unset, every read goes to the
    # primary. See README, "Read replicas".
    database_replica_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Reads without a Consistency-Token go to a replica only while it is at most this
    # far behind the primary (seconds, measured from WAL positions).
    replica_max_staleness: float = Field(default=2.0, gt=0)
    # How often each process reads the primary's and the replicas' WAL positions, and
    # how long it waits for them (a replica that does not answer is taken out).
    replica_check_interval: float = Field(default=0.5, gt=0)
    replica_check_timeout: float = Field(default=1.0, gt=0)
    # How long a Consistency-Token holds its promise; an older one is read from the primary.
    consistency_token_ttl: int = Field(default=300, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=3.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = False
    db_echo: bool = False
    sqlite_busy_timeout: float = Field(default=5.0, ge=0)
    # PostgreSQL: every wait on the database is bounded, so that a database that is
    # down, unreachable or locked costs a request seconds and a 503, never a hang.
    # In seconds; statement and lock timeouts of 0 turn them off.
    db_connect_timeout: float = Field(default=2.0, gt=0)  # TCP, TLS, start-up and log-in
    db_statement_timeout: float = Field(default=4.0, ge=0)  # the server cancels the statement
    db_lock_timeout: float = Field(default=2.0, ge=0)  # the server gives up waiting for a lock
    # The client gives up on a round trip the server did not answer: longer than the
    # statement timeout, so that a slow statement on a healthy server ends with the
    # server's error and keeps its connection.
    db_command_timeout: float = Field(default=5.0, gt=0)
    # A pooled connection idle longer than this is pinged before use (it may have
    # died while it sat there); under load connections never sit that long.
    db_ping_after_idle: float = Field(default=1.0, ge=0)
    db_ping_timeout: float = Field(default=1.0, gt=0)
    # Seconds of silence before the OS probes a connection (client and server side);
    # 3 unanswered probes a second apart close it. 0: the OS defaults (hours).
    db_tcp_keepalive: int = Field(default=10, ge=0)
    # Connecting through PgBouncer in transaction mode (see README, "PgBouncer").
    db_pgbouncer: bool = False
    # How the service's connections show in pg_stat_activity.
    db_application_name: str = Field(default="sql-app", max_length=63)
    # Concurrent GET /users/{id} look-ups answered by one query (1: each on its own).
    read_batch_size: int = Field(default=64, ge=1, le=1024)

    # HTTP server (`make run`, `python -m app`).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # A request head (request line and headers) larger than this gets 431.
    max_request_head_size: int = Field(default=32 * 1024, ge=1024)
    # Seconds a client has to send a complete request head, from when its connection
    # opened or its previous response ended: then it is dropped.
    request_head_timeout: float = Field(default=10.0, gt=0)
    # Seconds an idle keep-alive connection stays open.
    keep_alive_timeout: int = Field(default=5, ge=1)
    # Open client connections per worker, beyond which new ones get 503 at once
    # (0: the open-file limit, less what the process needs besides).
    max_connections: int = Field(default=0, ge=0)
    # Origins of the web pages that may call the API from a browser (CORS), comma
    # separated, each as the browser sends it (`https://app.example.com`, a port if not
    # the scheme's own); `*` for any. Unset, browsers refuse cross-origin calls.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Addresses (or networks) of the proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: the client address log-in throttling counts.
    trusted_proxies: str = "127.0.0.1,::1"
    # Seconds a worker (of `app serve --workers N`) may take to answer its
    # supervisor, starting up included, before it is replaced.
    worker_healthcheck_timeout: int = Field(default=30, ge=1)
    access_log: bool = True
    # On SIGTERM, requests under way get this long to finish (new connections are
    # refused); what still runs then is cancelled and rolled back. With the drain below,
    # both must end before the orchestrator kills the process (Docker: after 10 s,
    # unless the service's stop_grace_period says otherwise).
    graceful_shutdown_timeout: int = Field(default=8, ge=0)
    # On SIGTERM, before that: seconds during which readiness checks get 503 while
    # everything else is served and new connections are accepted, so that a load
    # balancer checking readiness takes the process out before it stops listening.
    # Longer than the load balancer's check interval times its failed checks. 0: none.
    shutdown_drain_seconds: float = Field(default=0, ge=0)
    # Logs: one JSON object a line ("json"), or lines for people ("console"); JSON
    # by default in production.
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Seconds a readiness check (GET /health/ready) waits for the database.
    health_timeout: float = Field(default=1.0, gt=0)
    # GET /metrics (Prometheus) and the measurements behind it.
    metrics_enabled: bool = True
    max_body_size: int = Field(default=64 * 1024, ge=1024)
    # FastAPI's own OpenTelemetry instrumentation (traces, metrics, logs) for when a
    # provider is configured. Off, it costs nothing; on, a check on every request.
    telemetry: bool = False

    # Password hashing (argon2id). Raising these upgrades stored hashes on next login.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_cost: int = Field(default=64 * 1024, ge=8)
    password_hash_parallelism: int = Field(default=1, ge=1)
    password_hash_concurrency: int = Field(default=1, ge=1)
    password_hash_niceness: int = Field(default=10, ge=0, le=19)

    # Log-in throttling: past this many failed log-ins in a window, per account (known
    # or not) and per client address, log-ins get 429 until the window ends. The
    # counters are in the database: every replica shares them.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_failure_window: int = Field(default=300, ge=1)
    # Requests waiting for a turn at the hasher, per process: past the first number
    # they get 503 at once, past the second from one client address, 429.
    password_hash_queue: int = Field(default=16, ge=1)
    password_hash_queue_per_address: int = Field(default=4, ge=1)

    # Conditional requests: PATCH and DELETE of an item or an account without
    # If-Match get 428 when true.
    require_if_match: bool = False
    # Idempotency-Key records: how long a key is remembered (seconds).
    idempotency_key_ttl: int = Field(default=24 * 3600, ge=60)
    # How long a first request holds its key when it could not release it (its
    # database went away, its process died): then a retry takes the key over.
    idempotency_key_lease: float = Field(default=5.0, gt=0, le=3600)

    # Access tokens (JWT).
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(default=30, ge=1)

    @property
    def engine_url(self) -> URL:
        """DATABASE_URL with DATABASE_PASSWORD as its password, when that is set."""
        return self._with_password(make_url(self.database_url))

    @property
    def replica_engine_urls(self) -> list[URL]:
        """DATABASE_REPLICA_URL's URLs, with DATABASE_PASSWORD as their password."""
        return [self._with_password(make_url(url)) for url in self.database_replica_url]

    def _with_password(self, url: URL) -> URL:
        if self.database_password is not None and self.database_password.get_secret_value():
            return url.set(password=self.database_password.get_secret_value())
        return url

    @property
    def logs_as_json(self) -> bool:
        if self.log_format is None:
            return self.environment == "production"
        return self.log_format == "json"

    @property
    def uses_development_secret_key(self) -> bool:
        return self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, database_url: str) -> str:
        return _with_async_driver(database_url)

    @field_validator("database_replica_url", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("database_replica_url")
    @classmethod
    def _replicas_of_postgresql(cls, urls: list[str]) -> list[str]:
        for url in urls:
            _with_async_driver(url)
            if not url.startswith("postgresql"):
                raise PydanticCustomError(
                    "database_replica_url", "replicas are PostgreSQL streaming replicas"
                )
        return urls

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not ORIGIN.fullmatch(origin):
                raise PydanticCustomError(
                    "cors_origins",
                    "{origin!r} is not an origin: a scheme and a host, with a port if not "
                    "the scheme's own, and nothing after (https://app.example.com:8443)",
                    {"origin": origin},
                )
        return origins

    @model_validator(mode="after")
    def _replicas_with_postgresql(self) -> Self:
        if self.database_replica_url and not self.database_url.startswith("postgresql"):
            raise ValueError("DATABASE_REPLICA_URL needs DATABASE_URL on PostgreSQL")
        return self

    @model_validator(mode="after")
    def _command_timeout_outlasts_statements(self) -> Self:
        # Otherwise a slow statement on a healthy server would look like an outage
        # to the client, which then replaces every pooled connection.
        if self.db_statement_timeout and self.db_command_timeout <= self.db_statement_timeout:
            raise ValueError("DB_COMMAND_TIMEOUT must be longer than DB_STATEMENT_TIMEOUT")
        return self

    @model_validator(mode="after")
    def _secret_key_fits(self) -> Self:
        # Anyone who knows the key can mint tokens for any account.
        if self.environment == "production" and (
            self.uses_development_secret_key
            or len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                "ENVIRONMENT=production needs SECRET_KEY set to a random string of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
            )
        return self


def _with_async_driver(database_url: str) -> str:
    # Anything else fails only when the first connection is made, as a traceback.
    # The messages name the URL's scheme at most, never the rest (a password).
    try:
        scheme = make_url(database_url).drivername
    except ArgumentError:
        raise PydanticCustomError(
            "database_url",
            "not a database URL: use postgresql+asyncpg://user@host:5432/db "
            "or sqlite+aiosqlite:///path/to/app.db",
        ) from None
    expected = ASYNC_SCHEMES.get(scheme.partition("+")[0])
    if expected is None:
        raise PydanticCustomError(
            "database_url",
            "{scheme}:// is not supported: use postgresql+asyncpg:// (PostgreSQL) "
            "or sqlite+aiosqlite:// (SQLite)",
            {"scheme": scheme},
        )
    if scheme != expected:
        raise PydanticCustomError(
            "database_url",
            "the service needs an async driver: use {expected}://, not {scheme}://",
            {"scheme": scheme, "expected": expected},
        )
    return database_url

"""Configuration: environment variables (and an optional `.env`), read in one place."""

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Good enough for a laptop, refused in production (see Settings._secret_key_fits).
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-do-not-use-in-production"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Every knob the service has. Nothing else in the code reads `os.environ`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"

    # Database. SQLite (aiosqlite) is the embedded default; PostgreSQL via asyncpg,
    # e.g. postgresql+asyncpg://user:password@host:5432/dbname
    database_url: str = "sqlite+aiosqlite:///./app.db"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = False
    db_echo: bool = False
    sqlite_busy_timeout: float = Field(default=5.0, ge=0)
    # Concurrent GET /users/{id} look-ups answered by one query (1: each on its own).
    read_batch_size: int = Field(default=64, ge=1, le=1024)

    # HTTP server (`make run`, `python -m app`).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    access_log: bool = True
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

    # Access tokens (JWT).
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    access_token_expire_minutes: int = Field(default=30, ge=1)

    @property
    def uses_development_secret_key(self) -> bool:
        return self.secret_key.get_secret_value() == DEVELOPMENT_SECRET_KEY

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

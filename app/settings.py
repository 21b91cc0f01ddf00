"""Configuration: environment variables (and an optional `.env`), read in one place."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # HTTP server (`make run`, `python -m app`).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_body_size: int = Field(default=64 * 1024, ge=1024)

    # Password hashing (argon2id). Raising these upgrades stored hashes on next login.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_cost: int = Field(default=64 * 1024, ge=8)
    password_hash_parallelism: int = Field(default=1, ge=1)
    password_hash_concurrency: int = Field(default=1, ge=1)

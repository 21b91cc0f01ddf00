"""The `app` command: serve, migrate, check, and administer accounts and records.

    app serve [--host H] [--port P] [--workers N]
    app migrate [--sql]
    app check
    app create-superuser EMAIL
    app deactivate-user EMAIL
    app activate-user EMAIL
    app purge-idempotency-keys

Every command reads the same settings as the service (environment variables and
.env). create-superuser creates the account as a superuser, or makes an existing
account one (its password is then left as it is); the password is asked for on
the terminal, or read from the first line of standard input when that is not a
terminal. deactivate-user deactivates an account and revokes its tokens;
activate-user makes it active again, and its old tokens stay revoked: it logs in
anew.
"""

import argparse
import asyncio
import getpass
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import exc as sa_exc

from app.domain.repositories.idempotency_keys import IdempotencyKeyRepository
from app.domain.repositories.login_failures import LoginFailureRepository
from app.domain.repositories.users import UserRepository
from app.domain.schemas import Email, Password
from app.domain.security import PasswordHasher
from app.platform.engine import create_engine, create_health_engine
from app.platform.errors import describe
from app.platform.logs import configure_logging
from app.platform.readiness import MIGRATIONS, Readiness
from app.platform.sessions import Sessions
from app.platform.settings import Settings
from app.server import serve


def alembic_config(settings: Settings) -> Config:
    """The migrations that ship with the app, run with these settings (not alembic.ini's)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["settings"] = settings
    config.attributes["configure_logger"] = False
    return config


def migrate(settings: Settings, sql: bool) -> None:
    command.upgrade(alembic_config(settings), "head", sql=sql)


async def check(settings: Settings) -> str:
    """Raises SystemExit with the reason when the service could not serve."""
    readiness = Readiness(create_health_engine(settings), settings.health_timeout)
    try:
        problem = await readiness.diagnosis()
    finally:
        await readiness.close()
    if problem is not None:
        raise SystemExit(f"not ready: {problem}")
    return "ready: settings valid, database reachable, schema at head"


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            raise SystemExit("The passwords differ.")
        return password
    return sys.stdin.readline().rstrip("\n")


@asynccontextmanager
async def _sessions(settings: Settings) -> AsyncIterator[Sessions]:
    """The service's sessions, for one command; its connections are closed after."""
    engine = create_engine(settings)
    try:
        yield Sessions(engine)
    finally:
        await engine.dispose()


async def create_superuser(settings: Settings, email: str) -> str:
    async with _sessions(settings) as sessions, sessions.transaction() as tx:
        users = UserRepository(tx)
        user = await users.get_by_email(email)
        if user is not None:
            user.is_superuser = True
            await users.save(user)
            return f"{email} (id {user.id}) is now a superuser"
        password = TypeAdapter(Password).validate_python(_read_password())
        hashed = await PasswordHasher(settings).hash(password, address="command line")
        created = await users.add(email=email, hashed_password=hashed, is_superuser=True)
        return f"created superuser {email} (id {created['id']})"


async def deactivate_user(settings: Settings, email: str) -> str:
    async with _sessions(settings) as sessions, sessions.transaction() as tx:
        users = UserRepository(tx)
        user = await users.get_by_email(email)
        if user is None:
            raise SystemExit(f"no account has the email {email}")
        user.is_active = False
        user.token_version += 1  # its tokens stay revoked if it is reactivated
        await users.save(user)
        return f"{email} (id {user.id}) is deactivated; its tokens are revoked"


async def activate_user(settings: Settings, email: str) -> str:
    async with _sessions(settings) as sessions, sessions.transaction() as tx:
        users = UserRepository(tx)
        user = await users.get_by_email(email)
        if user is None:
            raise SystemExit(f"no account has the email {email}")
        if user.is_active:
            return f"{email} (id {user.id}) is active already"
        # The token version stays: tokens revoked by the deactivation stay revoked.
        user.is_active = True
        await users.save(user)
        return f"{email} (id {user.id}) is active again; it logs in anew for a token"


async def purge_idempotency_keys(settings: Settings) -> str:
    """Expired Idempotency-Key records, and log-in failure counts whose window ended."""
    now = datetime.now(UTC)
    async with _sessions(settings) as sessions:
        async with sessions.single_write() as write:
            keys = await IdempotencyKeyRepository(write).purge(now=now)
        async with sessions.single_write() as write:
            windows = await LoginFailureRepository(write).purge(now=now)
    return f"purged {keys} expired idempotency keys and {windows} ended log-in windows"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (uvicorn, uvloop, httptools)")
    serve.add_argument("--host", help="default: HOST from the settings")
    serve.add_argument("--port", type=int, help="default: PORT from the settings")
    serve.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    migrate = commands.add_parser("migrate", help="upgrade the database schema to head")
    migrate.add_argument("--sql", action="store_true", help="print the SQL, run nothing")
    commands.add_parser("check", help="exit 0 when settings, database and schema are ready")
    for name, description in (
        ("create-superuser", "create or promote a superuser"),
        ("deactivate-user", "deactivate an account and revoke its tokens"),
        ("activate-user", "make a deactivated account active (its old tokens stay revoked)"),
    ):
        commands.add_parser(name, help=description).add_argument("email")
    commands.add_parser(
        "purge-idempotency-keys",
        help="delete expired Idempotency-Key records and ended log-in windows",
    )
    return parser


def _run(action: Callable[[], Coroutine[Any, Any, str]]) -> None:
    print(asyncio.run(action()))


# What a database that is missing, unreachable, or refusing the command raises: the
# driver's errors, the pool's timeout, and socket errors (a refused connection).
DATABASE_FAILURES = (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError)


def _closed_loop_is_no_failure(args: threading.ExceptHookArgs) -> None:
    # When a SQLite file cannot be opened, aiosqlite stops its worker thread without
    # waiting for it; the thread then hands the outcome of closing to the command's
    # event loop, which may have ended: "Event loop is closed" (aiosqlite 0.22; see
    # omnilib/aiosqlite#389). The connection is closed all the same, and the command
    # has said what failed, in one line.
    if args.exc_type is RuntimeError and str(args.exc_value) == "Event loop is closed":
        return
    threading.__excepthook__(args)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        raise SystemExit(f"invalid settings: {_first_problem(error)}") from None
    configure_logging(settings, stream=sys.stderr)
    if args.command == "serve":
        serve(settings, args.host or settings.host, args.port or settings.port, args.workers)
        return
    threading.excepthook = _closed_loop_is_no_failure
    try:
        match args.command:
            case "migrate":
                migrate(settings, args.sql)
            case "check":
                _run(lambda: check(settings))
            case "create-superuser":
                email = TypeAdapter(Email).validate_python(args.email)
                _run(lambda: create_superuser(settings, email))
            case "deactivate-user":
                email = TypeAdapter(Email).validate_python(args.email)
                _run(lambda: deactivate_user(settings, email))
            case "activate-user":
                email = TypeAdapter(Email).validate_python(args.email)
                _run(lambda: activate_user(settings, email))
            case "purge-idempotency-keys":
                _run(lambda: purge_idempotency_keys(settings))
    except ValidationError as error:
        raise SystemExit(f"invalid input: {_first_problem(error)}") from None
    except DATABASE_FAILURES as error:
        # For the operator, one line: what the driver or the network said.
        raise SystemExit(f"{args.command}: database error: {describe(error)}") from None


def _first_problem(error: ValidationError) -> str:
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


if __name__ == "__main__":
    main()

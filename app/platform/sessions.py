"""The kinds of session a unit of work can be, as types.

A route (or a command) names its unit of work as one of three kinds:

- `ReadSession`: no transaction; each SELECT sees what was committed when it ran.
  It can only run SELECTs: code that tries to write through it fails type
  checking, and at run time (ReadOnlyViolation).
- `Transaction`: one transaction, committed when the unit of work ends (for a route:
  after it returns and before the response is sent); anything raised rolls it back.
- `SingleWrite`: exactly one write statement, committed by the database as it
  completes (no BEGIN/COMMIT round trips), plus reads that explain its outcome.
  A second write raises: what must be atomic with the write belongs in that one
  statement, or the unit of work needs a Transaction.

`Sessions` makes them from one engine. The HTTP dependencies that hand them to routes
are in app.api.dependencies.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Executable, Result, Select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

Params = Mapping[str, Any]
Ts = TypeVarTuple("Ts")
E = TypeVar("E")


class ReadOnlyViolation(RuntimeError):
    """A statement that is not a SELECT went to a ReadSession."""


class ReadSession:
    """Reads outside any transaction: each SELECT sees what was committed when it ran.

    Statements on the mapped models' columns run on the session's connection, as
    Core statements: their rows are what the response needs, and the ORM's result
    processing, skipped, would be most of what a read costs on our side.
    """

    __slots__ = ("_connection", "_session")

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._connection: AsyncConnection | None = None

    @property
    def dialect(self) -> str:
        """The database's dialect name: "postgresql" or "sqlite"."""
        name: str = self._session.get_bind().dialect.name
        return name

    async def execute(self, statement: Select[*Ts], params: Params | None = None) -> Result[*Ts]:
        if not statement.is_select:  # the type says so; this holds for untyped callers too
            raise ReadOnlyViolation(f"a read session cannot run {statement!r}")
        return await (await self._core()).execute(statement, params)

    async def _core(self) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self._session.connection()
        return self._connection

    async def _write(self, statement: Executable, params: Params | None) -> Result[Any]:
        return await (await self._core()).execute(statement, params)


class ReplicaRead(ReadSession):
    """Reads that a streaming replica may serve, when one has what the request must see
    (app.platform.replicas chooses): each SELECT sees what that replica has replayed.
    Should the replica fail a statement (down, cut off, silent, a query cancelled by a
    conflict with recovery), `on_the_primary` is given the error and hands back a
    session on the primary: that statement, and those after it, run there."""

    __slots__ = ("_on_the_primary",)

    def __init__(
        self,
        session: AsyncSession,
        on_the_primary: Callable[[BaseException], Awaitable[AsyncSession]] | None = None,
    ) -> None:
        super().__init__(session)
        self._on_the_primary = on_the_primary

    async def execute(self, statement: Select[*Ts], params: Params | None = None) -> Result[*Ts]:
        if self._on_the_primary is None:
            return await super().execute(statement, params)
        try:
            return await super().execute(statement, params)
        except (SQLAlchemyError, OSError) as error:
            self._session = await self._on_the_primary(error)
            self._connection = None
            self._on_the_primary = None
            return await super().execute(statement, params)


class SingleWrite(ReadSession):
    """One write statement, its own transaction, and reads beside it."""

    __slots__ = ("_written",)

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._written = False

    async def write(self, statement: Executable, params: Params | None = None) -> Result[Any]:
        if self._written:
            raise RuntimeError(
                "a SingleWrite runs one write statement: make it one, or use a Transaction"
            )
        self._written = True
        return await self._write(statement, params)


class Transaction(ReadSession):
    """One transaction: everything done through it commits together, or nothing does.

    Besides reads and write statements, it loads entities to change (`entity`),
    whose changes `flush` writes (the ORM's unit of work, inside this one).
    """

    __slots__ = ()

    async def write(self, statement: Executable, params: Params | None = None) -> Result[Any]:
        return await self._write(statement, params)

    async def entity(self, statement: Select[E], params: Params | None = None) -> E | None:
        return await self._session.scalar(statement, params)

    async def flush(self) -> None:
        await self._session.flush()


# Each backend's default: a transaction per session (SQLite: BEGIN before a write).
TRANSACTIONAL = {"postgresql": "READ COMMITTED", "sqlite": "SERIALIZABLE"}


class Sessions:
    """Where each kind of session comes from, for one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        # expire_on_commit=False: a response is built from what the transaction
        # loaded; nothing may reload it after the commit.
        self.statements = async_sessionmaker(engine, expire_on_commit=False)
        level = TRANSACTIONAL[engine.dialect.name]
        self.transactions = async_sessionmaker(
            engine.execution_options(isolation_level=level), expire_on_commit=False
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[ReadSession]:
        async with self.statements() as session:
            yield ReadSession(session)

    @asynccontextmanager
    async def single_write(self) -> AsyncIterator[SingleWrite]:
        async with self.statements() as session:
            yield SingleWrite(session)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self.transactions.begin() as session:
            yield Transaction(session)

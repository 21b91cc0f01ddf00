"""The tables, as SQLAlchemy 2.0 typed mappings. Alembic migrations create them."""

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, MetaData, String, Text, false, text, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names: migrations can refer to them on every backend, and
# database errors name the constraint that was violated.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    # Ids are never reused, on SQLite too (by default it reuses the largest id
    # after a delete): an access token names its user by id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased (see schemas.Email): the unique constraint is then case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_superuser: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Counts the changes to the row: a change made through the ORM checks that the
    # row is still the version it loaded (a concurrent change makes it fail).
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    # Tokens carry the value they were issued under; changing the password, or
    # deactivating the account, increments it and so revokes them all.
    token_version: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    __mapper_args__ = {"version_id_col": version}

    # lazy="raise": touching an unloaded collection is an error in tests, never
    # hidden I/O (MissingGreenlet) while a response is being serialised.
    # passive_deletes: deleting a user leaves its items to the foreign key's
    # ON DELETE CASCADE instead of loading them first.
    items: Mapped[list["Item"]] = relationship(
        back_populates="owner", lazy="raise", order_by="Item.id", passive_deletes=True
    )


class Item(Base):
    __tablename__ = "items"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(10_000))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Counts the changes to the row (a write statement increments it); an item's
    # ETag is its version, so If-Match is checked by the write statement itself.
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))

    owner: Mapped[User] = relationship(back_populates="items", lazy="raise")


class IdempotencyKey(Base):
    """A request made with an Idempotency-Key, and once it succeeded, its response."""

    __tablename__ = "idempotency_keys"

    # The token's user; 0 for requests without one (sign-up).
    caller_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # While the first request runs: until when it holds the key (a request that died
    # holding it leaves it to a retry after that), and which request holds it.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    status_code: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(Text)
    # The response headers a replay repeats (a JSON object), e.g. its ETag.
    headers: Mapped[str | None] = mapped_column(Text)


class LoginFailures(Base):
    """Failed log-ins per account and per client address, in the current window."""

    __tablename__ = "login_failures"

    subject: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int]
    window_ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

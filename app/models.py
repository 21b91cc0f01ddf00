"""The tables, as SQLAlchemy 2.0 typed mappings. Alembic migrations create them."""

from sqlalchemy import ForeignKey, MetaData, String, false, true
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

    owner: Mapped[User] = relationship(back_populates="items", lazy="raise")

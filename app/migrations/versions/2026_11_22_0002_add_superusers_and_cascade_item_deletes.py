"""add superusers and cascade item deletes

users.is_superuser (false for every existing user), and items now go with their
owner: the foreign key becomes ON DELETE CASCADE. On SQLite both happen in batch
mode (the table is copied), which keeps every row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_items_owner_id_users"
# Batch mode rebuilds SQLite tables from reflection, which does not see AUTOINCREMENT.
SQLITE_TABLE = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("users", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.add_column(
            sa.Column("is_superuser", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("items", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.create_foreign_key(FK, "users", ["owner_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("items", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")
        batch_op.create_foreign_key(FK, "users", ["owner_id"], ["id"])
    with op.batch_alter_table("users", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.drop_column("is_superuser")

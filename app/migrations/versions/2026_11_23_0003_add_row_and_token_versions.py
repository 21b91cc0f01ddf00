"""add row and token versions

users.version and items.version count the changes to each row (1 for existing
rows): an item's ETag is its version; a user's changes check it. users.token_version
(0 for existing users) revokes the tokens issued before a password change or a
deactivation. On SQLite, in batch mode (the tables are copied, keeping every row).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Batch mode rebuilds SQLite tables from reflection, which does not see AUTOINCREMENT.
SQLITE_TABLE = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("users", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("items", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("items", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("users", table_kwargs=SQLITE_TABLE) as batch_op:
        batch_op.drop_column("token_version")
        batch_op.drop_column("version")

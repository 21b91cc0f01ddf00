"""add login failures

Failed log-ins counted per account and per client address, in windows, so that
every replica throttles the same way.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("subject", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_login_failures")),
    )
    op.create_index(
        op.f("ix_login_failures_window_ends_at"), "login_failures", ["window_ends_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_window_ends_at"), table_name="login_failures")
    op.drop_table("login_failures")

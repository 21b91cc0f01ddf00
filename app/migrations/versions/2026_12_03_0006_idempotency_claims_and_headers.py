"""idempotency claims and replayed headers

idempotency_keys.claimed_by names the request that holds a key while it runs: a
request whose hold lapsed and whose key another request took over can no longer
record its response (its transaction rolls back). idempotency_keys.headers keeps
the response headers a replay repeats (its ETag). Existing records get neither:
they are answered as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("headers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch_op:
        batch_op.drop_column("headers")
        batch_op.drop_column("claimed_by")

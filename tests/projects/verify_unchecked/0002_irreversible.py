"""a data fix that cannot be undone, said so"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    raise NotImplementedError("the audit trail is never removed")

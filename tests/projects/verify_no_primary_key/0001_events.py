"""an append-only events table without a primary key"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("events")

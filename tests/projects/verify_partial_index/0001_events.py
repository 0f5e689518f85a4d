"""Events, with an index on the open ones only (a partial index)"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None

OPEN = sa.text("closed_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_events_open", "events", ["kind"], postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    op.drop_table("events")

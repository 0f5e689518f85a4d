"""Drop the open-events index; the downgrade recreates it over every row, predicate lost"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.drop_index("ix_events_open", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_open", "events", ["kind"])

"""an index whose name PostgreSQL cuts to 63 characters (as Prefect has)"""
from alembic import op

revision = "0002"
down_revision = "0001"

NAME = "ix_flow_runs__work_queue_name_expected_start_time_when_scheduled_or_pending"


def upgrade() -> None:
    # SQLAlchemy refuses a name over 63 characters for PostgreSQL; raw SQL does not
    op.execute(f"CREATE INDEX {NAME} ON flow_runs (work_queue_name, expected_start_time)")


def downgrade() -> None:
    op.execute(f"DROP INDEX {NAME}")

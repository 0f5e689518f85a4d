"""runs"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("work_queue_name", sa.String(40), nullable=True),
        sa.Column("expected_start_time", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("flow_runs")

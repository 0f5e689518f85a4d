"""a ledger in its own schema (PostgreSQL)"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA other")
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        schema="other",
    )


def downgrade() -> None:
    op.drop_table("ledger", schema="other")
    op.execute("DROP SCHEMA other")

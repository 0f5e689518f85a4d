"""a log without a primary key"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "log",
        sa.Column("at", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(60), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("log")

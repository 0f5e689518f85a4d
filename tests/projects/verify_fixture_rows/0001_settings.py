"""settings, one row per key"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(30), primary_key=True),
        sa.Column("value", sa.String(30), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")

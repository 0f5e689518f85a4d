"""tags keyed by their code, and codes on their own"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("code", sa.String(30), primary_key=True),
        sa.Column("label", sa.String(80), nullable=False),
    )
    op.create_table("codes", sa.Column("code", sa.String(30), primary_key=True))


def downgrade() -> None:
    op.drop_table("codes")
    op.drop_table("tags")

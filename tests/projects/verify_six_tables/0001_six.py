"""six tables keyed by generated text, seeded together"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None

NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


def upgrade() -> None:
    for name in NAMES:
        op.create_table(
            name,
            sa.Column("code", sa.String(20), primary_key=True),
            sa.Column("note", sa.String(40), nullable=False),
        )


def downgrade() -> None:
    for name in NAMES:
        op.drop_table(name)

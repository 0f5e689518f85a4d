"""a revision after the irreversible one: still checked"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("audit", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("audit", "note")

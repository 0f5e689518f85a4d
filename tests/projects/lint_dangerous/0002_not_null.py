"""Add a NOT NULL column without a default"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("authors", sa.Column("country", sa.String(2), nullable=False))


def downgrade() -> None:
    pass

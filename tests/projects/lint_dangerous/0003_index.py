"""Plain CREATE INDEX on an existing table"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_authors_email", "authors", ["email"])


def downgrade() -> None:
    pass

"""Rename a column"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.alter_column("authors", "nickname", new_column_name="alias")


def downgrade() -> None:
    pass

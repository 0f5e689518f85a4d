"""Drop a column"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.drop_column("books", "legacy")


def downgrade() -> None:
    pass

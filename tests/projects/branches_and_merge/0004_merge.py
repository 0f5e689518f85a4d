"""Merge left and right"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = ('0002', '0003')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

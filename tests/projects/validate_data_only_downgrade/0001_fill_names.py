"""Revision 0001: fill a column with plain SQL"""
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE t_0001 SET id = id")


def downgrade() -> None:
    pass

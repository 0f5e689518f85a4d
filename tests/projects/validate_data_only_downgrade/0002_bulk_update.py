"""Revision 0002: a bulk update and seed rows, with SQLAlchemy"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

t = sa.table('t_0001', sa.column('id', sa.Integer))
RENUMBER = sa.text("update t_0001 set id = id + 0")


def upgrade() -> None:
    op.execute(t.update().where(t.c.id > 100).values(id=t.c.id))
    op.bulk_insert(t, [{'id': 1}, {'id': 2}])
    op.execute(RENUMBER)


def downgrade() -> None:
    """Nothing to undo: the rows fit the older schema."""

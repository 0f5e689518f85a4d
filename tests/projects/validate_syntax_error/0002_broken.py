"""Revision 0002"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t', sa.Column('id' sa.Integer()))


def downgrade() -> None:
    op.drop_table('t_0002')

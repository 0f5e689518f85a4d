"""Revision 0003"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t_0003', sa.Column('id', sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table('t_0003')

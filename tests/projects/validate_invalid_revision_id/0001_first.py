"""Revision 0001"""
from alembic import op
import sqlalchemy as sa

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t_0001', sa.Column('id', sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table('t_0001')

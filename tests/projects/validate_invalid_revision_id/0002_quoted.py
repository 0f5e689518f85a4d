"""Revision 0002, whose id would splice SQL into the version table's statement"""
from alembic import op
import sqlalchemy as sa

revision = "0002' || (SELECT sqlite_version()) || '"
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('t_0002', sa.Column('id', sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table('t_0002')

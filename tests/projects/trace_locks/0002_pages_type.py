"""pages as bigint: a rewrite"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.alter_column("books", "pages", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    op.alter_column("books", "pages", type_=sa.Integer(), existing_type=sa.BigInteger())

"""Change a column type"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.alter_column("books", "title", existing_type=sa.String(100), type_=sa.Integer())


def downgrade() -> None:
    pass

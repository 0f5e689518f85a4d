"""a downgrade with a bug in it"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("authors", sa.Column("died", sa.Integer(), nullable=True))


def downgrade() -> None:
    columns = {"authors": "died"}
    op.drop_column("authors", columns["author"])  # KeyError: a bug, not a refusal

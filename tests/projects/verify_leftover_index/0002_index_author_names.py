"""Index author names; the downgrade forgets the index"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_authors_name", "authors", ["name"])
    op.add_column("authors", sa.Column("born", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authors") as batch_op:
        batch_op.drop_column("born")

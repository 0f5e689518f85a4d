"""The safe way: a nullable column, an index built concurrently, a widened varchar"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.add_column("authors", sa.Column("bio", sa.Text(), nullable=True))
    op.add_column("authors", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.get_context().autocommit_block():
        op.create_index("ix_authors_bio", "authors", ["bio"], postgresql_concurrently=True)
    op.alter_column("authors", "name", existing_type=sa.String(100), type_=sa.String(200))


def downgrade() -> None:
    pass

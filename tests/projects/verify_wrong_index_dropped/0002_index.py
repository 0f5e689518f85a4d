"""Index author names; the downgrade drops the books index by mistake"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_authors_name", "authors", ["name"])


def downgrade() -> None:
    # DROP INDEX names no table: verify must still see that books changed
    op.drop_index("ix_books_title", table_name="books")

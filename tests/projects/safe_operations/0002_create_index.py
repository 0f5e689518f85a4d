"""an index on a live table: built concurrently on PostgreSQL"""
from migrasafe import safe_op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    safe_op.create_index("ix_books_title", "books", ["title"])


def downgrade() -> None:
    safe_op.drop_index("ix_books_title", "books")

"""Index book titles twice over; this downgrade is right"""
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_books_title_2", "books", ["title"])


def downgrade() -> None:
    op.drop_index("ix_books_title_2", table_name="books")

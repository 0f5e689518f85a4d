"""Constraints added the locking way, NOT NULL set, a table renamed"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_foreign_key("fk_books_author", "books", "authors", ["author_id"], ["id"])
    op.create_check_constraint("ck_books_title", "books", "length(title) > 0")
    op.create_unique_constraint("uq_authors_email", "authors", ["email"])
    op.alter_column("authors", "email", existing_type=sa.String(100), nullable=False)
    op.rename_table("books", "volumes")


def downgrade() -> None:
    pass

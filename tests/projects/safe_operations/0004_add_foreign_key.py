"""books get an editor: the new column references authors, added NOT VALID and validated apart"""
import sqlalchemy as sa

from migrasafe import safe_op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    safe_op.add_column("books", sa.Column("editor_id", sa.Integer()))
    safe_op.add_foreign_key("fk_books_editor_id", "books", "authors", ["editor_id"], ["id"])


def downgrade() -> None:
    safe_op.drop_constraint("fk_books_editor_id", "books", "foreignkey")
    safe_op.drop_column("books", "editor_id")

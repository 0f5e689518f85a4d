"""isbn unique: its index built concurrently, then attached as the constraint"""
from migrasafe import safe_op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    safe_op.add_unique("uq_books_isbn", "books", ["isbn"])


def downgrade() -> None:
    safe_op.drop_constraint("uq_books_isbn", "books", "unique")

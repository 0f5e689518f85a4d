"""pages is never negative: added NOT VALID, validated on its own"""
from migrasafe import safe_op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    safe_op.add_check("ck_books_pages", "books", "pages >= 0")


def downgrade() -> None:
    safe_op.drop_constraint("ck_books_pages", "books", "check")

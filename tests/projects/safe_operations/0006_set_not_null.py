"""every book has an author: NOT NULL through a validated CHECK on PostgreSQL"""
import sqlalchemy as sa

from migrasafe import safe_op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    safe_op.set_not_null("books", "author_id", existing_type=sa.Integer())


def downgrade() -> None:
    safe_op.drop_not_null("books", "author_id", existing_type=sa.Integer())

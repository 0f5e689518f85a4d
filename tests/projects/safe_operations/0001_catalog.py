"""authors and books, as they were before the safe operations"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(40), nullable=False),
    )
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("title", sa.String(80), nullable=False),
        sa.Column("isbn", sa.String(13)),
        sa.Column("pages", sa.Integer()),
        sa.Column("author_id", sa.Integer()),
    )


def downgrade() -> None:
    op.drop_table("books")
    op.drop_table("authors")

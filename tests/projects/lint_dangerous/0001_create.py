"""Only creates tables (and indexes them): nothing to flag"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(100), nullable=True),
        sa.Column("nickname", sa.String(50), nullable=True),
    )
    op.create_index("ix_authors_name", "authors", ["name"])
    op.create_table(
        "books",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("authors.id"), nullable=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("legacy", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    pass

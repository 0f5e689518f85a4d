"""The reference notebook's 0003: its downgrade clears values it did not fill

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute(
        "UPDATE books SET description = 'A book titled \"' || title || '\" by ' || author "
        "WHERE description IS NULL"
    )
    op.execute("UPDATE books SET price = 19.99 WHERE price IS NULL")
    op.execute("UPDATE books SET page_count = 300 WHERE page_count IS NULL")


def downgrade() -> None:
    op.execute("UPDATE books SET description = NULL, price = NULL, page_count = NULL")

"""A data migration that must run exactly once"""
import time

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(sa.text("INSERT INTO authors (name) VALUES ('inserted once by 0002')"))
    time.sleep(1.0)  # widen the window in which another run could interfere (and wait)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM authors WHERE name = 'inserted once by 0002'"))

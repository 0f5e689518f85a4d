"""Create a table and fill it slowly: the test kills the process meanwhile"""
import os
import time
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute(sa.text("INSERT INTO authors (name) VALUES ('written by 0002')"))
    marker = os.environ.get("MIGRASAFE_TEST_MARKER")
    if marker:  # tell the test we are midway, then take our time
        Path(marker).write_text("midway")
        time.sleep(120)


def downgrade() -> None:
    op.drop_table("audit")

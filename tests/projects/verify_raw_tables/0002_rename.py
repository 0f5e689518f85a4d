"""Rename the shelves to racks, and back"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.rename_table("shelves" if op.get_bind().dialect.name == "postgresql" else "Shelves",
                    "racks")


def downgrade() -> None:
    op.rename_table("racks", "shelves" if op.get_bind().dialect.name == "postgresql"
                    else "Shelves")

"""Schema and data in one revision; a dropped table, suppressed"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    with op.batch_alter_table("authors") as batch_op:
        batch_op.add_column(sa.Column("rank", sa.Integer(), nullable=True))
    op.execute("UPDATE authors SET rank = 1")
    op.drop_table("volumes")  # migrasafe: ignore[drop-table]


def downgrade() -> None:
    pass

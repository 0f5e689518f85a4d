"""a flag on each; the downgrade loses foxtrot's rows"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"

NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")


def upgrade() -> None:
    for name in NAMES:
        op.add_column(name, sa.Column("flag", sa.Boolean(), nullable=True))


def downgrade() -> None:
    for name in NAMES:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("flag")
    op.execute("DELETE FROM foxtrot")

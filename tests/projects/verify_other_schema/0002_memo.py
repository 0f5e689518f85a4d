"""a memo column; its downgrade empties the ledger"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("ledger", sa.Column("memo", sa.Text(), nullable=True), schema="other")


def downgrade() -> None:
    op.execute("DELETE FROM other.ledger")
    op.drop_column("ledger", "memo", schema="other")

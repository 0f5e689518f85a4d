"""a discount column; its downgrade empties the table"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("prices", sa.Column("discount", sa.Numeric(3, 1), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM prices")
    with op.batch_alter_table("prices") as batch:
        batch.drop_column("discount")

"""orders, whose status CHECK the generated rows cannot guess"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.CheckConstraint("status = upper(status)", name="ck_orders_status"),
    )


def downgrade() -> None:
    op.drop_table("orders")

"""prices: Numeric(4,2), an ARRAY of tags (JSON on SQLite), a status CHECK"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "prices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("amount", sa.Numeric(4, 2), nullable=False),
        sa.Column("tags", sa.ARRAY(sa.String(20)) if postgresql else sa.JSON(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("code", sa.String(8), nullable=False),
        sa.CheckConstraint("status = 'new' OR status = 'old'", name="ck_prices_status"),
        sa.CheckConstraint("amount > 0 AND amount < 50", name="ck_prices_amount"),
        sa.CheckConstraint("code IN ('EUR', 'USD', 'GBP')", name="ck_prices_code"),
    )


def downgrade() -> None:
    op.drop_table("prices")

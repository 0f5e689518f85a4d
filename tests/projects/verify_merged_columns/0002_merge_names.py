"""Merge first and last name into full_name; the downgrade re-creates them empty"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("authors", sa.Column("full_name", sa.String(101), nullable=True))
    op.execute("UPDATE authors SET full_name = first_name || ' ' || last_name")
    with op.batch_alter_table("authors") as batch_op:
        batch_op.drop_column("first_name")
        batch_op.drop_column("last_name")


def downgrade() -> None:
    with op.batch_alter_table("authors") as batch_op:
        batch_op.add_column(sa.Column("first_name", sa.String(50), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("last_name", sa.String(50), nullable=False, server_default=""))
        batch_op.drop_column("full_name")

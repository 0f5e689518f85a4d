"""Create a table, insert a row, alter another table, then fail"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute(sa.text("INSERT INTO authors (name) VALUES ('written by 0002')"))
    with op.batch_alter_table("authors") as batch_op:
        batch_op.add_column(sa.Column("born", sa.Integer(), nullable=True))
    raise RuntimeError("0002 fails after its changes")


def downgrade() -> None:
    op.drop_column("authors", "born")
    op.drop_table("audit")

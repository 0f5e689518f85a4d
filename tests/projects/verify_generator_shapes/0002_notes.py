"""a note on every account"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("note", sa.String(40), nullable=True))
    op.add_column("profiles", sa.Column("site", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("site")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("note")

"""urls move elsewhere; the downgrade brings the column back empty"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("log") as batch:
        batch.drop_column("url")


def downgrade() -> None:
    op.add_column("log", sa.Column("url", sa.String(60), nullable=True))

"""author bios (no downgrade() at all)"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("authors", sa.Column("bio", sa.Text(), nullable=True))

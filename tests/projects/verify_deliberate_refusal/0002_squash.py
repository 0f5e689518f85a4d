"""the old history is squashed: nothing to go back to, by design"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("authors", sa.Column("born", sa.Integer(), nullable=True))


def downgrade() -> None:
    raise RuntimeError("Cannot downgrade past revision 0002")

"""labels on projects"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("projects", sa.Column("label", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "label")

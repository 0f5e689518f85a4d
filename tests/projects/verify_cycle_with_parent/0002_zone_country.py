"""a country for each league: the zones, and so their teams and users, are seeded again"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("zones", sa.Column("country", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("country")

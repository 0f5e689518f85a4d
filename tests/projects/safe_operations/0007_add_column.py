"""a random shelf position for every book: added empty, backfilled in batches, then NOT NULL"""
from alembic import op
import sqlalchemy as sa

from migrasafe import safe_op

revision = "0007"
down_revision = "0006"

RANDOM = {"postgresql": "random()", "sqlite": "abs(random()) % 1000 / 1000.0"}


def upgrade() -> None:
    random = RANDOM.get(op.get_context().dialect.name, "rand()")
    shelf = sa.Column("shelf", sa.Float(), server_default=sa.text(random), nullable=False)
    safe_op.add_column("books", shelf, batch_size=100)


def downgrade() -> None:
    safe_op.drop_column("books", "shelf")

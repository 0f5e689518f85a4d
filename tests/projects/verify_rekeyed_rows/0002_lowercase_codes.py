"""codes are lowercase from now on (the downgrade cannot know the old case)"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute("UPDATE tags SET code = lower(code)")
    op.execute("UPDATE codes SET code = lower(code)")


def downgrade() -> None:
    pass

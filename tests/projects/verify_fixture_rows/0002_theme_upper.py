"""the theme setting is stored upper case; it must exist"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    bind = op.get_bind()
    theme = bind.execute(sa.text("SELECT value FROM settings WHERE key = 'theme'")).scalar()
    if theme is None:
        raise RuntimeError("the theme setting must exist before 0002")
    op.execute("UPDATE settings SET value = upper(value) WHERE key = 'theme'")


def downgrade() -> None:
    op.execute("UPDATE settings SET value = lower(value) WHERE key = 'theme'")

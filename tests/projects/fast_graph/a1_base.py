"""Base of everything

A longer description that Alembic keeps in longdoc.
"""
import not_installed_anywhere  # history/status must not need it

revision = "a1"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

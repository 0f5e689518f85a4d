"""Merge left and right"""
import not_installed_anywhere

revision = "d1"
down_revision = ("b1", "c1")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

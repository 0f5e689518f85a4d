"""Left branch"""
import not_installed_anywhere

revision = "b1"
down_revision = "a1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

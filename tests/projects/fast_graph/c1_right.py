"""Right branch, depending on the left one"""
import not_installed_anywhere

revision: str = "c1"
down_revision: str | None = "a1"
branch_labels = "right"
depends_on = ("b1",)


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

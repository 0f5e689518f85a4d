"""A second head, off the left branch"""
revision = "f1"
down_revision = "b1"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

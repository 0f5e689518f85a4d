"""A revision id that is not a literal: read by importing this one file"""
revision = "e" + "1"
down_revision = "d1"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

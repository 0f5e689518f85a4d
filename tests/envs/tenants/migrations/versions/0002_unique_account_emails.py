"""One account per email: fails on a tenant whose data holds a duplicate.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_accounts_email", "accounts", ["email"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_accounts_email", table_name="accounts")

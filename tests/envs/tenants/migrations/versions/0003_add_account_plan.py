"""Add accounts.plan.

Revision ID: 0003
Revises: 0002
"""

import os
import signal

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _tenant() -> str:
    named = context.get_x_argument(as_dictionary=True).get("tenant")
    return named or os.path.basename(op.get_bind().engine.url.database or "")


def upgrade() -> None:
    op.add_column("accounts", sa.Column("plan", sa.String(20), server_default="free"))
    # For the tests: the worker migrating this tenant dies here, mid-revision.
    if os.environ.get("FLEET_TEST_KILL_TENANT") == _tenant():
        os.kill(os.getpid(), signal.SIGKILL)


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("plan")

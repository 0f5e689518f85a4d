"""an index built without blocking writes (as pypi/warehouse builds them)"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.get_context().autocommit_block():
        if op.get_bind().dialect.name == "postgresql":
            op.execute("SET lock_timeout = '3s'")  # a wait on any open transaction fails fast
        op.create_index("journals_name_idx", "journals", ["name"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("journals_name_idx", table_name="journals", postgresql_concurrently=True)

"""author names are unique (the downgrade forgets SQLite needs batch mode)"""
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("authors") as batch:
        batch.create_unique_constraint("uq_authors_name", ["name"])


def downgrade() -> None:
    # On SQLite Alembic raises NotImplementedError("No support for ALTER of constraints in
    # SQLite dialect..."): the downgrade fails, it does not declare itself irreversible.
    op.drop_constraint("uq_authors_name", "authors", type_="unique")

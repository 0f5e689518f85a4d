"""Shelves, created in raw SQL with an unquoted mixed-case name (SQLite keeps "Shelves",
PostgreSQL folds it to "shelves")"""
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute("CREATE TABLE Shelves (id INTEGER PRIMARY KEY, label VARCHAR(40) NOT NULL)")


def downgrade() -> None:
    op.execute("DROP TABLE Shelves")

"""Rebuild the racks through a copy; the downgrade loses the racks without a label 'A%'"""
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute("CREATE TABLE racks_new (id INTEGER PRIMARY KEY, label VARCHAR(40) NOT NULL)")
    op.execute("INSERT INTO racks_new (id, label) SELECT id, label FROM racks")
    op.execute("DROP TABLE racks")
    op.execute("ALTER TABLE racks_new RENAME TO racks")


def downgrade() -> None:
    op.execute("CREATE TABLE racks_old (id INTEGER PRIMARY KEY, label VARCHAR(40) NOT NULL)")
    op.execute("INSERT INTO racks_old (id, label) SELECT id, label FROM racks "
               "WHERE label LIKE 'A%'")
    op.execute("DROP TABLE racks")
    op.execute("ALTER TABLE racks_old RENAME TO racks")

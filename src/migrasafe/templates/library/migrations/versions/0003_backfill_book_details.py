"""Fill missing book descriptions, prices and page counts

Revision ID: 0003
Revises: 0002
Create Date: 2024-01-01 14:00:00.000000

The upgrade records which values it fills in ``migrasafe_backfill_0003`` so
that the downgrade can clear exactly those, and only while they still hold
the value the upgrade put there: descriptions, prices and page counts that
existed before the upgrade, or were entered after it, survive a downgrade.

Both directions run in batches of book ids (``migrasafe.backfill``), each
batch one statement, touching only rows still to do: on a large catalogue no
statement locks the whole table, and with ``COMMIT_EACH_BATCH`` (PostgreSQL,
live tables) an interrupted upgrade continues where it stopped when re-run.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from migrasafe.backfill import backfill

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Written to be run again after stopping midway (the table is made only if missing, the
# batches touch only rows still to do): `migrasafe upgrade` reruns it without --resume.
resumable = True

DEFAULT_PRICE = 19.99
DEFAULT_PAGE_COUNT = 300
FILLED_COLUMNS = ("description", "price", "page_count")
BATCH_SIZE = 5_000
COMMIT_EACH_BATCH = False  # True: each batch commits (online backfill of a live table)

books = sa.table(
    "books",
    sa.column("id", sa.Integer),
    sa.column("title", sa.String),
    sa.column("author", sa.String),
    sa.column("description", sa.Text),
    sa.column("price", sa.Float),
    sa.column("page_count", sa.Integer),
)
filled = sa.table(
    "migrasafe_backfill_0003",
    sa.column("book_id", sa.Integer),
    *(sa.column(name, sa.Boolean) for name in FILLED_COLUMNS),
)


def _fill_values() -> dict[str, sa.ColumnElement[object]]:
    """What the upgrade writes into each column, computed from the row itself."""
    return {
        "description": sa.literal('A book titled "') + books.c.title + '" by ' + books.c.author,
        "price": sa.literal(DEFAULT_PRICE, sa.Float),
        "page_count": sa.literal(DEFAULT_PAGE_COUNT, sa.Integer),
    }


def upgrade() -> None:
    context = op.get_context()
    if context.as_sql or not sa.inspect(op.get_bind()).has_table("migrasafe_backfill_0003"):
        op.create_table(  # skipped when re-run after an interrupted online backfill
            "migrasafe_backfill_0003",
            sa.Column("book_id", sa.Integer(), primary_key=True),
            *(sa.Column(name, sa.Boolean(), nullable=False) for name in FILLED_COLUMNS),
        )
    missing = [books.c[name].is_(None) for name in FILLED_COLUMNS]

    def record(batch: sa.ColumnElement[bool]) -> sa.Executable:
        """Which of the batch's values are about to be filled, for the downgrade."""
        rows = sa.select(books.c.id, *missing).where(batch)
        return sa.insert(filled).from_select(["book_id", *FILLED_COLUMNS], rows)

    backfill(
        books,
        {name: sa.func.coalesce(books.c[name], value) for name, value in _fill_values().items()},
        where=sa.or_(*missing),
        before=record,
        batch_size=BATCH_SIZE,
        commit_each_batch=COMMIT_EACH_BATCH,
    )


def downgrade() -> None:
    for name, value in _fill_values().items():
        filled_here = sa.select(filled.c.book_id).where(filled.c[name] == sa.true())
        backfill(
            books,
            {name: None},
            where=sa.and_(books.c.id.in_(filled_here), books.c[name] == value),
            batch_size=BATCH_SIZE,
        )
    op.drop_table("migrasafe_backfill_0003")

"""``demo``: the reference project's whole workflow, run for real.

It writes the library project into a temporary directory, migrates a scratch
database up and down, and checks at each step what the database really holds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migrasafe.checks.validate import validate
from migrasafe.commands.history import history
from migrasafe.commands.scaffold import init
from migrasafe.commands.status import status
from migrasafe.db.dialects import connect, database_for
from migrasafe.db.urls import redact
from migrasafe.deploy.migrate import MigrationResult, downgrade, upgrade
from migrasafe.errors import DatabaseError, MigrasafeError
from migrasafe.project.config import CHECKSUM_TABLE, Project, load_project

SAMPLE_BOOKS = (
    {"title": "Dune", "author": "Frank Herbert", "isbn": "978-0441013593",
     "published_year": 1965, "genre": "Science Fiction"},
    {"title": "Pride and Prejudice", "author": "Jane Austen", "isbn": "978-0141439518",
     "published_year": 1813, "genre": "Romance"},
    {"title": "The Hobbit", "author": "J.R.R. Tolkien", "isbn": "978-0547928227",
     "published_year": 1937, "genre": "Fantasy"},
    {"title": "Neuromancer", "author": "William Gibson", "isbn": "978-0441569595",
     "published_year": 1984, "genre": "Cyberpunk"},
)  # fmt: skip
CURATED: dict[str, Any] = {
    "isbn": "978-0441013593",
    "description": "Spice, sand and prophecy.",
    "price": 9.99,
}
ORIGINAL_COLUMNS = ("title", "author", "isbn", "published_year", "genre")

# The template's env.py keeps Alembic's default version table.
BOOKKEEPING = ("alembic_version", CHECKSUM_TABLE)


@dataclass
class DemoStep:
    name: str
    ok: bool = True
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "details": self.details}


@dataclass
class DemoReport:
    directory: str
    url: str
    steps: list[DemoStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": self.directory,
            "url": self.url,
            "ok": self.ok,
            "steps": [s.to_dict() for s in self.steps],
        }


class _StepFailed(Exception):
    pass


def demo(url: str | None = None, *, keep: bool = False) -> DemoReport:
    """Run the reference workflow on ``url`` (a temporary SQLite file by default).

    A database given by URL must be empty: the demo creates and drops the
    catalogue's tables there and leaves it empty again.
    """
    own_database = url is None
    if url is not None:
        _require_empty(url)  # before anything is created: a refusal leaves nothing behind
    workdir = Path(tempfile.mkdtemp(prefix="migrasafe-demo-"))
    url = url or f"sqlite:///{workdir / 'library.db'}"
    report = DemoReport(directory=str(workdir / "library"), url=redact(url))
    try:
        _Workflow(report, workdir / "library", url, own_database).run()
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return report


def _require_empty(url: str) -> None:
    if not database_for(url).sessions.exists():
        return
    with connect(url, readonly=True) as connection:
        tables = sa.inspect(connection).get_table_names()
    if tables:
        raise DatabaseError(
            f"the demo needs an empty database, but {redact(url)} has tables "
            f"({', '.join(sorted(tables)[:5])}); create a new database for it"
        )


class _Workflow:
    def __init__(self, report: DemoReport, directory: Path, url: str, own_database: bool) -> None:
        self.report = report
        self.directory = directory
        self.url = url
        self.own_database = own_database
        self.project: Project | None = None

    def run(self) -> None:
        steps: list[tuple[str, Callable[[DemoStep], None]]] = [
            ("init the library project", self.init),
            ("upgrade to 0001", lambda s: self.migrate(s, upgrade, "0001")),
            ("add sample books with plain SQL", self.add_books),
            ("upgrade to 0002", lambda s: self.migrate(s, upgrade, "0002")),
            ("curate one book's description and price", self.curate),
            ("upgrade to head: 0003 fills what is missing", self.upgrade_head),
            ("history", self.history),
            ("status", self.status),
            ("validate", self.validate),
            ("downgrade to 0002: only what 0003 filled is cleared", self.downgrade_0002),
            ("downgrade to 0001: the books survive", self.downgrade_0001),
            ("downgrade to base", self.downgrade_base),
            ("upgrade to head again", self.upgrade_again),
        ]
        if not self.own_database:
            steps.append(("leave the database empty again", self.clean_up))
        for name, action in steps:
            step = DemoStep(name)
            self.report.steps.append(step)
            try:
                action(step)
            except (MigrasafeError, _StepFailed, sa.exc.SQLAlchemyError) as exc:
                step.ok = False
                step.details.append(f"FAILED: {exc}")
                return

    # -- helpers -------------------------------------------------------------
    @property
    def proj(self) -> Project:
        assert self.project is not None
        return self.project

    def books(self, columns: tuple[str, ...]) -> dict[str, dict[str, object]]:
        with connect(self.url, readonly=True) as conn:
            rows = conn.execute(sa.text(f"SELECT {', '.join(columns)} FROM books")).mappings()
            return {str(row["isbn"]): dict(row) for row in rows}

    def tables(self) -> list[str]:
        with connect(self.url, readonly=True) as conn:
            return sorted(sa.inspect(conn).get_table_names())

    @staticmethod
    def expect(condition: bool, message: str) -> None:
        if not condition:
            raise _StepFailed(message)

    def migrate(self, step: DemoStep, command: Callable[..., MigrationResult], target: str) -> None:
        result = command(self.proj, target)
        verb = "applied" if result.direction == "upgrade" else "reverted"
        for s in result.steps:
            step.details.append(f"{verb} {s.revision}: {s.message}")
        step.details.append(f"database now at {', '.join(result.after) or 'base'}")

    # -- steps ---------------------------------------------------------------
    def init(self, step: DemoStep) -> None:
        result = init(self.directory, "library")
        self.project = load_project(self.directory / "alembic.ini", url=self.url)
        self.project.config.attributes["configure_logger"] = False  # the report says it all
        step.details.append(f"wrote {len(result.files)} files to {self.directory}")
        step.details.append(f"database: {redact(self.url)}")

    def add_books(self, step: DemoStep) -> None:
        with connect(self.url) as conn, conn.begin():
            conn.execute(
                sa.text(
                    "INSERT INTO books (title, author, isbn, published_year, genre) "
                    "VALUES (:title, :author, :isbn, :published_year, :genre)"
                ),
                list(SAMPLE_BOOKS),
            )
            defaults = conn.execute(
                sa.text("SELECT count(*) FROM books WHERE is_available AND created_at IS NOT NULL")
            ).scalar_one()
        self.expect(defaults == len(SAMPLE_BOOKS), "server defaults did not fill new rows")
        step.details.append(f"inserted {len(SAMPLE_BOOKS)} books without is_available/created_at")
        step.details.append(
            f"the database's own defaults set is_available and created_at on {defaults} of them"
        )

    def curate(self, step: DemoStep) -> None:
        with connect(self.url) as conn, conn.begin():
            conn.execute(
                sa.text("UPDATE books SET description = :description, price = :price "
                        "WHERE isbn = :isbn"),
                CURATED,
            )  # fmt: skip
        step.details.append(f"set description {CURATED['description']!r} and price "
                            f"{CURATED['price']} on Dune before 0003 runs")  # fmt: skip

    def upgrade_head(self, step: DemoStep) -> None:
        self.migrate(step, upgrade, "head")
        books = self.books(("isbn", "title", "author", "description", "price", "page_count"))
        dune = books[CURATED["isbn"]]
        self.expect(
            dune["description"] == CURATED["description"] and dune["price"] == CURATED["price"],
            f"0003 overwrote the curated values of Dune: {dune}",
        )
        filled = [b for isbn, b in books.items() if isbn != CURATED["isbn"]]
        for book in filled:
            expected = f'A book titled "{book["title"]}" by {book["author"]}'
            self.expect(book["description"] == expected, f"unexpected description {book}")
            self.expect(book["price"] == 19.99 and book["page_count"] == 300, f"not filled: {book}")
        step.details.append(
            f"0003 filled description, price 19.99, 300 pages on {len(filled)} books"
        )
        step.details.append("Dune kept its curated description and price (page count filled: 300)")
        step.details.append(f"e.g. {filled[0]['description']}")

    def history(self, step: DemoStep) -> None:
        for entry in history(self.proj).entries:
            marks = [m for m, on in (("head", entry.is_head), ("current", entry.is_current)) if on]
            parent = ", ".join(entry.down_revision) or "base"
            suffix = f" ({', '.join(marks)})" if marks else ""
            step.details.append(f"{parent} -> {entry.revision}{suffix}: {entry.message}")

    def status(self, step: DemoStep) -> None:
        result = status(self.proj)
        self.expect(result.up_to_date, f"expected up to date, found pending {result.pending}")
        step.details.append(
            f"current {', '.join(result.current)}, head {', '.join(result.heads)}: up to date "
            "(read from the database)"
        )

    def validate(self, step: DemoStep) -> None:
        report = validate(self.proj)
        self.expect(report.ok, f"validate found {[f.message for f in report.findings]}")
        step.details.append(f"{report.files} revision files, {len(report.findings)} findings")

    def downgrade_0002(self, step: DemoStep) -> None:
        self.migrate(step, downgrade, "0002")
        books = self.books(("isbn", "description", "price", "page_count"))
        dune = books.pop(CURATED["isbn"])
        self.expect(
            dune["description"] == CURATED["description"] and dune["price"] == CURATED["price"],
            f"the downgrade destroyed Dune's curated values: {dune}",
        )
        self.expect(dune["page_count"] is None, f"Dune's filled page count survived: {dune}")
        cleared = all(b["description"] is None and b["price"] is None for b in books.values())
        self.expect(cleared, f"values 0003 filled survived its downgrade: {books}")
        step.details.append(f"cleared the values 0003 filled on {len(books)} books")
        step.details.append("Dune still has its curated description and price")

    def downgrade_0001(self, step: DemoStep) -> None:
        self.migrate(step, downgrade, "0001")
        books = self.books(ORIGINAL_COLUMNS)
        expected = {b["isbn"]: dict(b) for b in SAMPLE_BOOKS}
        self.expect(books == expected, f"sample books changed: expected {expected}, found {books}")
        step.details.append(f"all {len(books)} sample books identical to what was inserted")
        step.details.append(f"tables: {', '.join(self.tables())}")

    def downgrade_base(self, step: DemoStep) -> None:
        self.migrate(step, downgrade, "base")
        left = [t for t in self.tables() if t not in BOOKKEEPING]
        self.expect(not left, f"tables left behind at base: {left}")
        step.details.append("no application table left")

    def upgrade_again(self, step: DemoStep) -> None:
        self.migrate(step, upgrade, "head")
        self.expect(status(self.proj).up_to_date, "not up to date after upgrade head")
        with connect(self.url) as conn:
            with conn.begin():
                conn.execute(
                    sa.text(
                        "INSERT INTO books (title, author, isbn) VALUES (:title, :author, :isbn)"
                    ),
                    SAMPLE_BOOKS[0],
                )
                book_id = conn.execute(sa.text("SELECT id FROM books")).scalar_one()
            try:
                with conn.begin():
                    conn.execute(
                        sa.text("INSERT INTO reviews (book_id, reviewer_name, rating) "
                                "VALUES (:book_id, 'Ann', 6)"),
                        {"book_id": book_id},
                    )  # fmt: skip
            except sa.exc.IntegrityError:
                step.details.append("a review rated 6 is refused by the 1..5 CHECK constraint")
            else:
                raise _StepFailed("a review with rating 6 was accepted")
        step.details.append(f"tables: {', '.join(self.tables())}")

    def clean_up(self, step: DemoStep) -> None:
        with connect(self.url) as conn, conn.begin():
            conn.execute(sa.text("DELETE FROM books"))
        self.migrate(step, downgrade, "base")
        with connect(self.url) as conn, conn.begin():
            for table in BOOKKEEPING:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        step.details.append(f"dropped {' and '.join(BOOKKEEPING)}; the database is empty again")

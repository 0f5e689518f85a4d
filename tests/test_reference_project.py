"""The library reference project: its 0003 backfill reverses losslessly, its models hold."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import query, run_cli

FILLED = 'A book titled "Emma" by Jane Austen'


def _migrate(library: Path, url: str, command: str, target: str) -> None:
    result = run_cli("-c", str(library), "--url", url, command, target)
    assert result.exit_code == 0, result.stderr


def _book(url: str, isbn: str) -> tuple[object, ...]:
    return query(url, "SELECT description, price, page_count FROM books WHERE isbn = :i", i=isbn)[0]


def _insert(url: str, isbn: str, title: str = "Emma", **values: object) -> None:
    columns = ["title", "author", "isbn", *values]
    query(url, f"INSERT INTO books ({', '.join(columns)}) VALUES "
               f"({', '.join(':' + c for c in columns)})",
          title=title, author="Jane Austen", isbn=isbn, **values)  # fmt: skip


def test_description_set_before_0003_survives_upgrade_and_downgrade(
    library: Path, db_url: str
) -> None:
    _migrate(library, db_url, "upgrade", "0002")
    _insert(db_url, "kept", description="Hand-written", price=5.0, page_count=12)
    _insert(db_url, "filled")

    _migrate(library, db_url, "upgrade", "0003")
    assert _book(db_url, "kept") == ("Hand-written", 5.0, 12)
    assert _book(db_url, "filled") == (FILLED, 19.99, 300)

    _migrate(library, db_url, "downgrade", "0002")
    assert _book(db_url, "kept") == ("Hand-written", 5.0, 12)
    assert _book(db_url, "filled") == (None, None, None)


def test_values_equal_to_the_fill_but_present_before_survive(library: Path, db_url: str) -> None:
    _migrate(library, db_url, "upgrade", "0002")
    _insert(db_url, "same", description=FILLED, price=19.99, page_count=300)
    _migrate(library, db_url, "upgrade", "0003")
    _migrate(library, db_url, "downgrade", "0002")
    assert _book(db_url, "same") == (FILLED, 19.99, 300)


def test_values_entered_after_the_upgrade_survive_its_downgrade(library: Path, db_url: str) -> None:
    _migrate(library, db_url, "upgrade", "0002")
    _insert(db_url, "edited")
    _migrate(library, db_url, "upgrade", "0003")
    query(db_url, "UPDATE books SET price = 25.5 WHERE isbn = 'edited'")
    _insert(db_url, "new", description="Added at 0003", price=1.0, page_count=2)

    _migrate(library, db_url, "downgrade", "0002")
    assert _book(db_url, "edited") == (None, 25.5, None)
    assert _book(db_url, "new") == ("Added at 0003", 1.0, 2)


def test_defaults_exist_in_the_database(library: Path, db_url: str) -> None:
    _migrate(library, db_url, "upgrade", "head")
    query(db_url, "INSERT INTO books (title, author, isbn) VALUES ('T', 'A', 'x')")
    available, created_at = query(db_url, "SELECT is_available, created_at FROM books")[0]
    assert available in (True, 1) and created_at is not None


def test_rating_outside_1_to_5_is_refused(library: Path, db_url: str) -> None:
    _migrate(library, db_url, "upgrade", "head")
    _insert(db_url, "r")
    with pytest.raises(sa.exc.IntegrityError):
        query(db_url, "INSERT INTO reviews (book_id, reviewer_name, rating) "
                      "SELECT id, 'Ann', 6 FROM books")  # fmt: skip


def _models(library: Path) -> ModuleType:
    path = library.parent / "library" / "models.py"
    spec = importlib.util.spec_from_file_location(f"library_models_{id(path)}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-like annotations resolve through the module
    spec.loader.exec_module(module)
    return module


def test_application_engine_enforces_foreign_keys_and_cascades(library: Path, db_url: str) -> None:
    _migrate(library, db_url, "upgrade", "head")
    models = _models(library)
    engine = models.make_engine(db_url, poolclass=sa.NullPool)
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        book = models.Book(title="Emma", author="Jane Austen", isbn="1")
        book.reviews.append(models.Review(reviewer_name="Ann", rating=5))
        session.add(book)
        session.commit()
        with pytest.raises(sa.exc.IntegrityError):
            session.add(models.Review(book_id=999, reviewer_name="Bob", rating=3))
            session.commit()
        session.rollback()
        with engine.begin() as conn:  # plain SQL: the database cascades, not the ORM
            conn.execute(sa.text("DELETE FROM books"))
    assert query(db_url, "SELECT count(*) FROM reviews") == [(0,)]
    engine.dispose()


def test_models_match_the_migrations(library: Path, db_url: str) -> None:
    _migrate(library, db_url, "upgrade", "head")
    models = _models(library)
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "target_metadata": models.Base.metadata,
                "include_name": lambda name, type_, _p: not (name or "").startswith("migrasafe_"),
            },
        )
        assert compare_metadata(context, models.Base.metadata) == []
    engine.dispose()

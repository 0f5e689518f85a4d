"""The library catalogue's models: books and the reviews readers write about them.

Defaults live in the database (``server_default``) so that rows inserted with
plain SQL get them too, and constraint names follow one naming convention so
that migrations can drop them by name on every database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    MetaData,
    String,
    Text,
    create_engine,
    event,
    func,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(100))
    isbn: Mapped[str] = mapped_column(String(20), unique=True)
    published_year: Mapped[int | None]
    genre: Mapped[str | None] = mapped_column(String(50))
    is_available: Mapped[bool] = mapped_column(server_default=true())
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Added by revision 0002, filled for existing rows by 0003.
    price: Mapped[float | None] = mapped_column(Float)
    page_count: Mapped[int | None]
    description: Mapped[str | None] = mapped_column(Text)

    reviews: Mapped[list[Review]] = relationship(
        back_populates="book", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Book(id={self.id!r}, title={self.title!r}, author={self.author!r})"


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("books.id", ondelete="CASCADE"), index=True)
    reviewer_name: Mapped[str] = mapped_column(String(100))
    rating: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    book: Mapped[Book] = relationship(back_populates="reviews")

    def __repr__(self) -> str:
        return f"Review(id={self.id!r}, book_id={self.book_id!r}, rating={self.rating!r})"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the application: on SQLite, foreign keys are enforced.

    SQLite ignores FOREIGN KEY clauses (and ON DELETE CASCADE) unless each
    connection turns them on. Migrations run without this on purpose: SQLite's
    own procedure for rebuilding a table (batch mode) requires them off.
    """
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _enable_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine

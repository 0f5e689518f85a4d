"""Alembic environment written by `migrasafe init`.

Runs online (against ``sqlalchemy.url``) and offline (``--sql``, printing the
SQL). On SQLite, batch mode lets operations that SQLite's ALTER TABLE cannot
do rebuild the table instead. Each migration runs in its own transaction where
the database supports transactional DDL.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, make_url, pool
from sqlalchemy.engine import Connection

{{target_metadata}}

config = context.config

# A caller that handles logging itself (migrasafe's demo, tests) can opt out.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Leave migrasafe's own bookkeeping tables out of autogenerate."""
    return not (type_ == "table" and name is not None and name.startswith("migrasafe_"))


def _options(dialect_name: str) -> dict[str, object]:
    return {
        "target_metadata": target_metadata,
        "include_name": include_name,
        "render_as_batch": dialect_name == "sqlite",
        "transaction_per_migration": True,
    }


def run_migrations_offline() -> None:
    """Emit the migrations' SQL to the output instead of running it."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, **_options(connection.dialect.name))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against the database, or a connection or engine handed over.

    migrasafe hands over a Connection, pytest-alembic an Engine.
    """
    handed = config.attributes.get("connection")
    if isinstance(handed, Connection):
        _migrate(handed)
        return
    engine = handed or engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        _migrate(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

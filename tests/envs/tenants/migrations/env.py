"""A schema-per-tenant env.py, as such projects write it: `-x tenant=NAME` picks the
tenant's schema (search_path) and keeps its version table there; without it, the
database the URL names is the tenant's (a database per tenant)."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool, text

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None
tenant = context.get_x_argument(as_dictionary=True).get("tenant")


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      version_table_schema=tenant, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        if tenant is not None:
            connection.execute(text(f'SET search_path TO "{tenant}"'))
            connection.commit()
        context.configure(connection=connection, target_metadata=target_metadata,
                          version_table_schema=tenant, transaction_per_migration=True,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

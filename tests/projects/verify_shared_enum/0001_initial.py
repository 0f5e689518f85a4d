"""initial schema, as large projects squash it: one enum shared by several tables"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None

# Created by the first create_table that uses it; the others find it made.
state = sa.Enum("draft", "active", "archived", name="record_state")
kind = sa.Enum("person", "group", name="member_kind")


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("state", state, nullable=False),
    )
    op.create_index("ix_organisations_state", "organisations", ["state"])
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisations.id"),
                  nullable=False),
        sa.Column("kind", kind, nullable=False),
        sa.Column("state", state, nullable=False),
    )
    op.create_index("ix_members_state", "members", ["state"])
    for name in ("projects", "boards", "documents", "folders", "invoices", "contracts",
                 "reports", "events", "channels"):
        op.create_table(
            name,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("organisation_id", sa.Integer(), sa.ForeignKey("organisations.id")),
            sa.Column("owner_kind", kind, nullable=True),
            sa.Column("state", state, nullable=False, server_default="draft"),
            sa.Column("title", sa.String(120), nullable=False),
        )
        op.create_index(f"ix_{name}_state", name, ["state"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("value", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    for name in ("settings", "channels", "events", "reports", "contracts", "invoices",
                 "folders", "documents", "boards", "projects", "members", "organisations"):
        op.drop_table(name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS record_state")
        op.execute("DROP TYPE IF EXISTS member_kind")

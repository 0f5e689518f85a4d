"""what real schemas hold that generated rows must respect"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("region", sa.String(30), nullable=False),
        sa.Column("code", sa.String(30), nullable=False),
        sa.UniqueConstraint("region", "code", name="uq_owners_region_code"),
    )
    # a composite foreign key: both columns from one parent row
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_region", sa.String(30), nullable=False),
        sa.Column("owner_code", sa.String(30), nullable=False),
        sa.ForeignKeyConstraint(["owner_region", "owner_code"], ["owners.region", "owners.code"],
                                name="fk_accounts_owner"),
    )
    # a primary key that is a foreign key: one profile per owner, no two alike
    op.create_table(
        "profiles",
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("owners.id"), primary_key=True),
        sa.Column("bio", sa.Text(), nullable=True),
    )
    # a composite primary key of integers: SQLite numbers none of them
    op.create_table(
        "pairs",
        sa.Column("a", sa.Integer(), primary_key=True),
        sa.Column("b", sa.Integer(), primary_key=True),
        sa.Column("label", sa.String(20), nullable=False),
    )
    # a generated column: the database refuses a value for it
    op.create_table(
        "measures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("doubled", sa.Integer(), sa.Computed("amount * 2", persisted=True)),
    )
    # a boolean: TINYINT(1) on MySQL, which holds 0 and 1
    op.create_table(
        "switches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("active", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
    )
    # a lookup table whose keys a narrower column points at (OpenStack's status names)
    op.create_table("statuses", sa.Column("name", sa.String(30), primary_key=True))
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(10), sa.ForeignKey("statuses.name"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("statuses")
    for name in ("switches", "measures", "pairs", "profiles", "accounts", "owners"):
        op.drop_table(name)

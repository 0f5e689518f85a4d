"""the status becomes an enum: the rows' text is cast to it"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"

STATUS = sa.Enum("open", "closed", name="ticket_status", create_constraint=True)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        STATUS.create(op.get_bind())
        op.execute(
            "ALTER TABLE tickets ALTER COLUMN status TYPE ticket_status "
            "USING status::ticket_status"
        )
    else:
        with op.batch_alter_table("tickets") as batch:
            batch.alter_column("status", type_=STATUS, existing_type=sa.String(20),
                               existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tickets ALTER COLUMN status TYPE varchar(20) USING status::text")
        STATUS.drop(op.get_bind())
    else:
        with op.batch_alter_table("tickets") as batch:
            batch.drop_constraint("ticket_status", type_="check")
            batch.alter_column("status", type_=sa.String(20), existing_nullable=False)

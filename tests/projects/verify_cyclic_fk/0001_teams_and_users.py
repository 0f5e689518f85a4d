"""teams and users pointing at each other: users.team_id <-> teams.captain_id"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("captain_id", sa.Integer(), nullable=True),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", name="fk_users_team"),
                  nullable=True),
    )
    with op.batch_alter_table("teams") as batch:
        batch.create_foreign_key("fk_teams_captain", "users", ["captain_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint("fk_teams_captain", type_="foreignkey")
    op.drop_table("users")
    op.drop_table("teams")

"""teams and users pointing at each other, teams in a zone they cannot be without"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("zone_id", sa.Integer(), sa.ForeignKey("zones.id", name="fk_teams_zone"),
                  nullable=False),
        sa.Column("captain_id", sa.Integer(), nullable=True),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
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
    op.drop_table("zones")

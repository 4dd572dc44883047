"""applications: engine settings and the in-memory connector kind

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "connector_kind IN ('ldap', 'entra', 'keycloak', 'manual')"
NEW_KINDS = "connector_kind IN ('ldap', 'entra', 'keycloak', 'manual', 'memory')"


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None, recreate="auto") as batch_op:
        batch_op.add_column(sa.Column("rate_limit_per_second", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "remove_unassigned_access", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.drop_constraint(op.f("ck_applications_connector_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_applications_connector_kind"), NEW_KINDS)


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None, recreate="auto") as batch_op:
        batch_op.drop_constraint(op.f("ck_applications_connector_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_applications_connector_kind"), OLD_KINDS)
        batch_op.drop_column("remove_unassigned_access")
        batch_op.drop_column("rate_limit_per_second")

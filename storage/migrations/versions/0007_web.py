"""Web Chat identities: conversations bound to a citizen by a proof, and each citizen's manage-link epoch.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_identities",
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("proof", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_web_identities"),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name="fk_web_identities_citizen_id_citizens",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_web_identities_citizen_id", "web_identities", ["citizen_id"])
    op.create_table(
        "web_link_epochs",
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id", name="pk_web_link_epochs"),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name="fk_web_link_epochs_citizen_id_citizens",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("web_link_epochs")
    op.drop_index("ix_web_identities_citizen_id", table_name="web_identities")
    op.drop_table("web_identities")

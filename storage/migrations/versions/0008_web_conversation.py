"""Web Chat proofs hold for one Direct Line conversation: web_identities gains conversation_id.

A Direct Line token works only in the conversation `tokens/generate` named, so a proof is bound to that
conversation as well as to the user id. Bindings made before this revision name no conversation and could
be replayed in any: they are dropped (the citizen opens the manage link again, or signs in again).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM web_identities")
    # batch_alter_table: SQLite cannot add a NOT NULL column in place; it copies the table (PostgreSQL alters).
    with op.batch_alter_table("web_identities") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(128), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("web_identities") as batch:
        batch.drop_column("conversation_id")

"""A person's notification preferences and their in-app inbox."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Table,
    Text,
    Time,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from notifications.tables import metadata

# A person's choices; no row means the defaults (see notifications.preferences.domain).
preferences = Table(
    "preferences",
    metadata,
    Column(
        "member_id",
        Uuid,
        ForeignKey("recipients.member_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("channels", ARRAY(Text), nullable=False),
    # IANA zone; NULL: derived from the country of residence.
    Column("timezone", Text),
    Column("quiet_start", Time),
    Column("quiet_end", Time),
    Column("opted_out", ARRAY(Text), nullable=False, server_default="{}"),
    # Categories that need consent (newsletter) the person opted in to.
    Column("consents", ARRAY(Text), nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The in-app inbox: what the person reads in the portal.
inbox_messages = Table(
    "inbox_messages",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "member_id",
        Uuid,
        ForeignKey("recipients.member_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("delivery_id", Uuid, nullable=False, unique=True),
    Column("category", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("read_at", DateTime(timezone=True)),
    Index("inbox_messages_member_idx", "member_id", "created_at"),
    Index(
        "inbox_messages_unread_idx",
        "member_id",
        "created_at",
        postgresql_where=text("read_at IS NULL"),
    ),
)

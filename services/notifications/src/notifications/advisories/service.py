"""Use cases of advisories: awareness subscribers as the returnees service tells of them,
and the fan-out of a published advisory (one transaction each, in the consumer's).

Who is told of an advisory of country C (``returnees.advisory.published``):

- every registered member whose country of residence is C (the recipients kept from the
  registry's events), in the ``awareness`` category as campaigns do: their opt-out is
  respected, their first reachable channel (a verified address only) and the in-app
  inbox, in their language;
- every awareness subscriber of C whose address is confirmed (double opt-in) and who has
  not left, on their channel, in their language, with their signed unsubscribe link;
  a subscriber whose address is that of a member already told is not told twice.

Each is one delivery per (event, person, channel) (``deliveries_once``), so a redelivered
event adds nothing; the Message-ID of each email is its delivery id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from diaspora_events.contracts import (
    AdvisoryPublishedV1,
    SubscriberConfirmedV1,
    SubscriberRequestedV1,
    SubscriberUnsubscribedV1,
)
from diaspora_events.observability import current_traceparent
from diaspora_events.outbox import OutboxWriter
from notifications.advisories.domain import country_name, in_language
from notifications.advisories.tables import subscribers
from notifications.deliveries.dispatch import (
    Skip,
    Target,
    choose_channel,
    delivery_row,
    enqueue,
    target_query,
)
from notifications.deliveries.domain import (
    SUBSCRIBER_CONFIRMATION_REASON,
    SUBSCRIBER_REASON,
)
from notifications.deliveries.tables import deliveries
from notifications.preferences.domain import DEFAULT_ZONE, Preferences
from notifications.tables import recipients
from notifications.templates.domain import Rendered, TemplateVersion, render_version
from notifications.templates.service import resolve

log = structlog.get_logger(__name__)

ADVISORY_TEMPLATE = "advisory_published"
CONFIRMATION_TEMPLATE = "subscriber_confirmation"
BATCH = 1000
CHANNELS = {"email": "email", "sms": "sms"}


def _target(subscriber_id: UUID, channel: str, address: str, language: str) -> Target:
    """A subscriber as the dispatcher's rows need them (they are in Togo, give no name)."""
    return Target(
        member_id=subscriber_id,
        given_name="",
        family_name="",
        email=address if channel == "email" else None,
        phone=address if channel == "sms" else None,
        language=language,
        country="TG",
        prefs=Preferences(),
    )


def _traceparent() -> str | None:
    return current_traceparent().get("traceparent")


# --- subscribers ----------------------------------------------------------------------


async def requested(
    session: AsyncSession,
    outbox: OutboxWriter,
    event: SubscriberRequestedV1,
    *,
    cause_event_id: UUID,
    available: frozenset[str],
) -> UUID | None:
    """Keep the pending subscriber and send the confirmation link (double opt-in): the
    one message an unconfirmed address receives. Nothing for someone who has left or
    confirmed already. The delivery id, or None."""
    values = {
        "subscriber_id": event.subscriber_id,
        "channel": event.channel,
        "address": event.address,
        "language": event.language,
        "requested_at": event.requested_at,
        "updated_at": event.requested_at,
    }
    kept = (
        await session.execute(
            insert(subscribers)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[subscribers.c.subscriber_id],
                set_={k: v for k, v in values.items() if k != "subscriber_id"},
                where=subscribers.c.confirmed_at.is_(None)
                & subscribers.c.unsubscribed_at.is_(None),
            )
            .returning(subscribers.c.subscriber_id)
        )
    ).first()
    channel = CHANNELS[event.channel]
    if kept is None:
        log.info("subscriber_confirmation_skipped", reason="confirmed or left")
        return None
    if channel not in available:
        log.info("subscriber_confirmation_skipped", reason=f"{channel} not offered")
        return None
    version = await resolve(session, CONFIRMATION_TEMPLATE, event.language)
    hours = max(1, round((event.expires_at - event.requested_at).total_seconds() / 3600))
    message = render_version(
        version,
        {"link": event.confirm_link, "expires_in_hours": hours},
        locale=version.language,
        timezone=DEFAULT_ZONE,
    )
    created = await enqueue(
        session,
        outbox,
        [
            delivery_row(
                _target(event.subscriber_id, channel, event.address, event.language),
                channel,
                message,
                cause_event_id=cause_event_id,
                template=CONFIRMATION_TEMPLATE,
                category_name=version.category,
                traceparent=_traceparent(),
                reason=SUBSCRIBER_CONFIRMATION_REASON,
            )
        ],
    )
    return created[0] if created else None


async def confirmed(session: AsyncSession, event: SubscriberConfirmedV1) -> bool:
    """The subscriber confirmed their address: from now on they are told. Nothing for
    someone who has left (a late or replayed event never brings them back)."""
    values = {
        "subscriber_id": event.subscriber_id,
        "channel": event.channel,
        "address": event.address,
        "language": event.language,
        "awareness": event.awareness,
        "countries": sorted({c.upper() for c in event.countries}),
        "unsubscribe_link": event.unsubscribe_link,
        "consent_text_version": event.consent_text_version,
        "consented_at": event.consented_at,
        "confirmed_at": event.confirmed_at,
        "updated_at": event.confirmed_at,
    }
    kept = (
        await session.execute(
            insert(subscribers)
            .values(**values)
            .on_conflict_do_update(
                index_elements=[subscribers.c.subscriber_id],
                set_={k: v for k, v in values.items() if k != "subscriber_id"},
                where=subscribers.c.unsubscribed_at.is_(None),
            )
            .returning(subscribers.c.subscriber_id)
        )
    ).first()
    return kept is not None


async def unsubscribed(session: AsyncSession, event: SubscriberUnsubscribedV1) -> None:
    """The subscriber left: their address and link are forgotten, what is still queued for
    them is cancelled and their delivery log keeps no address nor text."""
    forget = {
        "address": None,
        "unsubscribe_link": None,
        "unsubscribed_at": event.unsubscribed_at,
        "updated_at": event.unsubscribed_at,
    }
    await session.execute(
        insert(subscribers)
        .values(subscriber_id=event.subscriber_id, channel=None, **forget)
        .on_conflict_do_update(index_elements=[subscribers.c.subscriber_id], set_=forget)
    )
    mine = deliveries.c.recipient_id == event.subscriber_id
    await session.execute(
        update(deliveries)
        .where(mine, deliveries.c.status == "pending")
        .values(status="cancelled", last_error="unsubscribed")
    )
    await session.execute(
        update(deliveries).where(mine).values(address=None, body=None, sms_text=None)
    )


# --- campaigns to subscribers ---------------------------------------------------------

# The only campaign category subscribers consented to (advisories come by their event).
SUBSCRIBER_CAMPAIGN_CATEGORY = "awareness"


def awareness_audience(category_name: str, *, languages: list[str]) -> Any | None:
    """The ids of the confirmed subscribers who asked for awareness messages, for a
    campaign of ``category_name`` (None: subscribers never get that category)."""
    if category_name != SUBSCRIBER_CAMPAIGN_CATEGORY:
        return None
    query = select(subscribers.c.subscriber_id).where(
        subscribers.c.awareness.is_(True),
        subscribers.c.confirmed_at.is_not(None),
        subscribers.c.unsubscribed_at.is_(None),
        subscribers.c.address.is_not(None),
    )
    if languages:
        query = query.where(subscribers.c.language.in_(languages))
    return query


@dataclass(frozen=True)
class Subscriber:
    """A subscriber as a campaign's runner needs them."""

    target: Target
    channel: str
    unsubscribe_link: str


async def campaign_subscribers(session: AsyncSession, ids: list[UUID]) -> dict[UUID, Subscriber]:
    """The confirmed subscribers among ``ids`` (those who left since are absent)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(subscribers).where(
            subscribers.c.subscriber_id.in_(ids),
            subscribers.c.confirmed_at.is_not(None),
            subscribers.c.unsubscribed_at.is_(None),
            subscribers.c.address.is_not(None),
        )
    )
    found = {}
    for row in rows:
        channel = CHANNELS.get(row.channel or "")
        if channel is None:
            continue
        found[row.subscriber_id] = Subscriber(
            target=_target(row.subscriber_id, channel, row.address, row.language),
            channel=channel,
            unsubscribe_link=row.unsubscribe_link or "",
        )
    return found


FOOTER = {
    "fr": "Pour ne plus recevoir ces messages : {link}",
    "en": "To stop receiving these messages: {link}",
}


def with_unsubscribe_link(message: Rendered, link: str) -> Rendered:
    """A campaign's message to a subscriber ends with their unsubscribe link."""
    footer = FOOTER.get(message.language, FOOTER["fr"]).format(link=link)
    return Rendered(
        subject=message.subject,
        body=f"{message.body.rstrip()}\n\n{footer}\n",
        sms=f"{message.sms} {footer}",
        language=message.language,
        version=message.version,
    )


# --- advisories -----------------------------------------------------------------------


@dataclass(frozen=True)
class FanOut:
    """How many people an advisory reached (deliveries created, not counting inboxes)."""

    members: int
    subscribers: int
    skipped: int


class _Renderer:
    """Renders the advisory once per language (members), or per subscriber (their link)."""

    def __init__(self, session: AsyncSession, event: AdvisoryPublishedV1) -> None:
        self._session = session
        self._event = event
        self._versions: dict[str, TemplateVersion] = {}
        self._rendered: dict[tuple[str, str], Rendered] = {}

    async def version(self, language: str) -> TemplateVersion:
        if language not in self._versions:
            self._versions[language] = await resolve(self._session, ADVISORY_TEMPLATE, language)
        return self._versions[language]

    def render(self, version: TemplateVersion, locale: str, zone: str, link: str) -> Rendered:
        key = (version.language, link)
        if key not in self._rendered:
            event, language = self._event, version.language
            self._rendered[key] = render_version(
                version,
                {
                    "country": event.country,
                    "country_name": country_name(event.country, language),
                    "level": event.level,
                    "title": in_language(language, event.title_fr, event.title_en),
                    "text": in_language(language, event.text_fr, event.text_en),
                    "unsubscribe_link": link,
                },
                locale=locale,
                timezone=zone,
            )
            if link:  # one subscriber's: not worth keeping
                return self._rendered.pop(key)
        return self._rendered[key]


async def fan_out(
    session: AsyncSession,
    outbox: OutboxWriter,
    event: AdvisoryPublishedV1,
    *,
    cause_event_id: UUID,
    available: frozenset[str],
    batch: int = BATCH,
) -> FanOut:
    """Queue the advisory for the members living in its country and for its confirmed
    subscribers, once each (see the module's docstring)."""
    country = event.country.upper()
    renderer = _Renderer(session, event)
    traceparent = _traceparent()
    rows: list[dict[str, Any]] = []
    reached: set[str] = set()
    members = subscribed = skipped = 0

    async def flush(force: bool = False) -> None:
        if rows and (force or len(rows) >= batch):
            await enqueue(session, outbox, rows)
            rows.clear()

    people = await session.execute(
        target_query()
        .where(recipients.c.country_of_residence == country)
        .order_by(recipients.c.member_id)
    )
    for row in people:
        target = Target.of(row)
        version = await renderer.version(target.language)
        try:
            channel = choose_channel(target, version.category, available)
        except Skip:
            skipped += 1
            continue
        message = renderer.render(version, target.locale_for(version.language), target.zone, "")
        channels = [channel] + (["inbox"] if channel != "inbox" and "inbox" in available else [])
        for each in channels:
            rows.append(
                delivery_row(
                    target,
                    each,
                    message,
                    cause_event_id=cause_event_id,
                    template=ADVISORY_TEMPLATE,
                    category_name=version.category,
                    traceparent=traceparent,
                )
            )
        address = target.address(channel)
        if address:
            reached.add(address)
        members += 1
        await flush()

    audience = await session.execute(
        select(subscribers)
        .where(
            subscribers.c.countries.contains([country]),
            subscribers.c.confirmed_at.is_not(None),
            subscribers.c.unsubscribed_at.is_(None),
            subscribers.c.address.is_not(None),
        )
        .order_by(subscribers.c.subscriber_id)
    )
    for sub in audience:
        found = CHANNELS.get(sub.channel or "")
        if found is None or found not in available or sub.address in reached:
            skipped += 1
            continue
        channel = found
        version = await renderer.version(sub.language)
        message = renderer.render(
            version, version.language, DEFAULT_ZONE, sub.unsubscribe_link or ""
        )
        rows.append(
            delivery_row(
                _target(sub.subscriber_id, channel, sub.address, sub.language),
                channel,
                message,
                cause_event_id=cause_event_id,
                template=ADVISORY_TEMPLATE,
                category_name=version.category,
                traceparent=traceparent,
                reason=SUBSCRIBER_REASON,
            )
        )
        reached.add(sub.address)
        subscribed += 1
        await flush()
    await flush(force=True)
    log.info(
        "advisory_fanned_out",
        country=country,
        members=members,
        subscribers=subscribed,
        skipped=skipped,
    )
    return FanOut(members=members, subscribers=subscribed, skipped=skipped)

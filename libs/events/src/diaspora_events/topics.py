"""The topic registry: one topic per aggregate family, keyed by aggregate id."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    owner: str
    description: str
    partitions: int = 6
    # Topics carrying personal data keep a finite history until per-person
    # encryption (crypto-shredding) lands; see docs/events.md.
    carries_personal_data: bool = False
    retention_ms: int = 30 * DAY_MS
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), **self.config}


FOREVER_MS = -1

REGISTRY_MEMBERS = Topic(
    name="registry.members",
    owner="registry",
    description=(
        "Lifecycle of members of the diaspora registry, keyed by member id. Compacted: "
        "the latest event per member (a whole-profile snapshot, or the erasure) is kept "
        "forever, so read models rebuild from the beginning and erased people leave no trace."
    ),
    carries_personal_data=True,
    retention_ms=FOREVER_MS,
    # Compaction runs on closed segments: roll daily so an erasure supersedes the
    # person's earlier snapshots within about a day.
    config={
        "cleanup.policy": "compact",
        "segment.ms": str(DAY_MS),
        "min.cleanable.dirty.ratio": "0.1",
    },
)

REGISTRY_ASSOCIATIONS = Topic(
    name="registry.associations",
    owner="registry",
    description="Associations of Togolese abroad, keyed by association id (compacted snapshots).",
    carries_personal_data=True,
    retention_ms=FOREVER_MS,
    config={"cleanup.policy": "compact", "segment.ms": str(DAY_MS)},
)

REGISTRY_DUPLICATES = Topic(
    name="registry.duplicates",
    owner="registry",
    description="Duplicate-review cases of the registry, keyed by case id (ids only).",
)

REGISTRY_AUDIT = Topic(
    name="registry.audit",
    owner="registry",
    description="Audit trail of staff reads and changes of members' records, keyed by member id.",
    carries_personal_data=True,
)

NOTIFICATIONS_DELIVERIES = Topic(
    name="notifications.deliveries",
    owner="notifications",
    description="Outcome of each notification delivery, keyed by delivery id.",
)

NOTIFICATIONS_AUDIT = Topic(
    name="notifications.audit",
    owner="notifications",
    description=(
        "Audit trail of staff reads of delivery logs and inboxes (keyed by member id) and "
        "of template saves and previews (keyed by the template version's id)."
    ),
    carries_personal_data=True,
)

NOTIFICATIONS_CONTACTS = Topic(
    name="notifications.contacts",
    owner="notifications",
    description=(
        "Verification of members' email addresses and phone numbers, keyed by member id "
        "(which kind of contact, never the address itself)."
    ),
)

MATCHING_NEEDS = Topic(
    name="matching.needs",
    owner="matching",
    description=(
        "National needs (missions, volunteering, co-development), keyed by need id. No "
        "personal data; compacted: the latest snapshot per need is kept forever."
    ),
    retention_ms=FOREVER_MS,
    config={"cleanup.policy": "compact", "segment.ms": str(DAY_MS)},
)

MATCHING_MATCHES = Topic(
    name="matching.matches",
    owner="matching",
    description="Proposals of needs to experts and their answers, keyed by proposal id.",
    carries_personal_data=True,
)

MATCHING_MISSIONS = Topic(
    name="matching.missions",
    owner="matching",
    description="Missions that follow accepted proposals, keyed by mission id.",
    carries_personal_data=True,
)

MATCHING_PROJECTS = Topic(
    name="matching.projects",
    owner="matching",
    description=(
        "Projects of the diaspora project holders' platform and the interest partners "
        "express in them, keyed by project id."
    ),
    carries_personal_data=True,
)

MATCHING_AUDIT = Topic(
    name="matching.audit",
    owner="matching",
    description="Audit trail of staff reads of personal data held by matching, keyed by member id.",
    carries_personal_data=True,
)

CONSULAR_APPLICATIONS = Topic(
    name="consular.applications",
    owner="consular",
    description=(
        "Consular applications (consular card, laissez-passer, passport and identity card "
        "preparation, civil-status transcription, e-visa): submission, every status change "
        "and SLA escalations, keyed by application id."
    ),
    carries_personal_data=True,
)

CONSULAR_AUDIT = Topic(
    name="consular.audit",
    owner="consular",
    description=(
        "Audit trail of consular: staff reads and changes of applications (keyed by the "
        "applicant's member id) and edits of the service catalogue (keyed by the version id)."
    ),
    carries_personal_data=True,
)

CONSULAR_REPORTS = Topic(
    name="consular.reports",
    owner="consular",
    description=(
        "Difficulty reports of Togolese abroad (consular): filed, status changes, messages "
        "(ids only) and SLA escalations to the ministry, keyed by report id."
    ),
    carries_personal_data=True,
)

RETURNEES_CASES = Topic(
    name="returnees.cases",
    owner="returnees",
    description=(
        "Cases of returning migrants (returnees): opened, intake, needs, plan, follow-ups, "
        "assignment, status changes and closure, keyed by case id."
    ),
    carries_personal_data=True,
)

RETURNEES_AUDIT = Topic(
    name="returnees.audit",
    owner="returnees",
    description=(
        "Audit trail of returnees: staff reads and changes of cases, sensitive fields "
        "included (keyed by the returnee's member id, or the case id when none is known)."
    ),
    carries_personal_data=True,
)

RETURNEES_REFERRALS = Topic(
    name="returnees.referrals",
    owner="returnees",
    description=(
        "Referrals of returnees' needs to partner organisations: created, acknowledged, "
        "done, refused or cancelled, and SLA escalations to the ministry, keyed by "
        "referral id."
    ),
    carries_personal_data=True,
)

RETURNEES_ADVISORIES = Topic(
    name="returnees.advisories",
    owner="returnees",
    description=(
        "Advisories of the watchlist of countries where migrant workers' rights are "
        "reported violated: published and withdrawn, keyed by watchlist entry id (public "
        "text, no personal data)."
    ),
)

RETURNEES_SUBSCRIBERS = Topic(
    name="returnees.subscribers",
    owner="returnees",
    description=(
        "Awareness subscribers in Togo (not diaspora members): requested, confirmed "
        "(double opt-in) and unsubscribed, keyed by subscriber id; the address sealed."
    ),
    carries_personal_data=True,
)

ALL_TOPICS: tuple[Topic, ...] = (
    REGISTRY_MEMBERS,
    REGISTRY_ASSOCIATIONS,
    REGISTRY_DUPLICATES,
    REGISTRY_AUDIT,
    NOTIFICATIONS_DELIVERIES,
    MATCHING_NEEDS,
    MATCHING_MATCHES,
    MATCHING_MISSIONS,
    MATCHING_PROJECTS,
    MATCHING_AUDIT,
    NOTIFICATIONS_AUDIT,
    NOTIFICATIONS_CONTACTS,
    CONSULAR_APPLICATIONS,
    CONSULAR_AUDIT,
    CONSULAR_REPORTS,
    RETURNEES_CASES,
    RETURNEES_AUDIT,
    RETURNEES_REFERRALS,
    RETURNEES_ADVISORIES,
    RETURNEES_SUBSCRIBERS,
)


def with_prefix(topic: Topic, prefix: str) -> Topic:
    """The topic as named on a cluster shared under ``prefix`` ("" in production)."""
    return replace(topic, name=prefix + topic.name) if prefix else topic


def dead_letter_topic(consumer: str, *, prefix: str = "") -> Topic:
    """Where a consumer parks messages it could not handle after its retries."""
    return Topic(
        name=f"{prefix}{consumer}.dlq",
        owner=consumer,
        description=f"Messages {consumer} could not handle, with the error in their headers.",
        partitions=1,
        carries_personal_data=True,
    )

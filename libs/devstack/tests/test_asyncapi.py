"""The generated AsyncAPI documents and catalogue: in step with the code, valid, compatible."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import async_sessionmaker

from diaspora_devstack import asyncapi
from diaspora_devstack.asyncapi import (
    ServiceView,
    asyncapi_document,
    breaking_changes,
    check,
    generate,
    incompatibilities,
    main,
    service_views,
    to_yaml,
)
from diaspora_devstack.services import discover
from diaspora_events.cloudevents import encode
from diaspora_events.consumer import EventConsumer, Outcome, Record, inbox_table
from diaspora_events.contracts import DeliveryDeliveredV1, Event, MemberRegisteredV1, personal
from diaspora_events.contracts.base import all_contracts
from diaspora_events.topics import ALL_TOPICS, REGISTRY_MEMBERS

SERVICES = discover()

ROOT = Path(__file__).resolve().parents[3]


def registered() -> MemberRegisteredV1:
    return MemberRegisteredV1(
        member_id=UUID("0190d7a8-0000-7000-8000-000000000001"),
        given_name="Afi",
        family_name="Mensah",
        date_of_birth=date(1990, 1, 1),
        email="afi@example.org",
        phone="+22890000000",
        country_of_residence="FR",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def delivered() -> DeliveryDeliveredV1:
    return DeliveryDeliveredV1(
        delivery_id=UUID("0190d7a8-0000-7000-8000-000000000002"),
        recipient_id=UUID("0190d7a8-0000-7000-8000-000000000001"),
        channel="email",
        template="member_welcome",
        cause_event_id=UUID("0190d7a8-0000-7000-8000-000000000003"),
        delivered_at=datetime(2026, 1, 1, tzinfo=UTC),
        attempts=1,
    )


@functools.cache
def _generated() -> dict[str, dict[str, Any]]:
    return {view.name: asyncapi_document(view) for view in service_views()}


def documents() -> dict[str, dict[str, Any]]:
    """Every service's document as the code generates it: generated once per session
    (a second or more under load), a fresh copy each call (tests change theirs)."""
    return copy.deepcopy(_generated())


# --- the committed files ------------------------------------------------------


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_committed_documents_are_in_step_with_the_code() -> None:
    result = check(ROOT)
    assert result.ok, (
        "docs/asyncapi/*.yaml or docs/events.md disagree with the code; run "
        "`uv run python -m diaspora_devstack.asyncapi write`\n"
        + "\n".join(result.breaking)
        + "\n".join(result.diffs)
    )


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_cli_check_passes_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(ROOT), "check"]) == 0
    assert "up to date" in capsys.readouterr().out


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_cli_write_then_check_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(tmp_path), "check"]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err
    assert "asyncapi write" in err

    assert main(["--root", str(tmp_path), "write"]) == 0
    assert {p.name for p in (tmp_path / "docs" / "asyncapi").iterdir()} == {
        f"{name}.yaml" for name in SERVICES
    }
    assert (tmp_path / "docs" / "events.md").exists()
    assert main(["--root", str(tmp_path), "check"]) == 0

    # A hand edit shows up as a readable diff.
    catalogue = tmp_path / "docs" / "events.md"
    catalogue.write_text(catalogue.read_text().replace("Event catalogue", "Events"))
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "check"]) == 1
    err = capsys.readouterr().err
    assert "-# Events" in err
    assert "+# Event catalogue" in err


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_generation_is_stable() -> None:
    assert generate() == generate()
    for document in documents().values():
        text = to_yaml(document)
        assert yaml.safe_load(text) == document
        assert "&id" not in text  # no YAML anchors or aliases


# --- a breaking change in a committed contract version -------------------------


def _committed_with(change: Any, tmp_path: Path) -> Path:
    """A copy of the committed documents where ``change`` edited registry's payload."""
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    path = tmp_path / "docs" / "asyncapi" / "registry.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["components"]["messages"]["registry.member.registered.v1"]["payload"])
    path.write_text(to_yaml(document))
    return tmp_path


# Regenerates whole documents (or runs a subprocess): seconds, not milliseconds.
@pytest.mark.slow
def test_check_reports_a_breaking_change_against_the_committed_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if the committed v1 had a `nickname` the code no longer has.
    def had_nickname(payload: dict[str, Any]) -> None:
        payload["properties"]["nickname"] = {"type": "string"}

    root = _committed_with(had_nickname, tmp_path)
    assert main(["--root", str(root), "check"]) == 1
    err = capsys.readouterr().err
    assert "registry.member.registered v1: nickname: removed" in err
    assert "A breaking change needs a new version" in err

    # `write` refuses to overwrite the committed contract with an incompatible one...
    assert main(["--root", str(root), "write"]) == 1
    assert "nickname" in capsys.readouterr().err
    assert "nickname" in (root / "docs" / "asyncapi" / "registry.yaml").read_text()
    # ...unless told the version was never released.
    assert main(["--root", str(root), "write", "--allow-breaking"]) == 0
    assert main(["--root", str(root), "check"]) == 0


def test_incompatibilities_see_every_kind_of_break() -> None:
    document = documents()["registry"]
    payload = document["components"]["messages"]["registry.member.registered.v1"]["payload"]
    payload["properties"]["phone"]["type"] = "integer"  # committed: integer; code: string
    payload["required"].remove("email")  # committed: optional; code: required
    payload["properties"]["preferred_language"]["enum"] = ["fr", "en", "ee"]
    breaking, notes = incompatibilities({"registry.yaml": document})
    assert breaking == [
        "registry.member.registered v1: email: was optional, is now required",
        "registry.member.registered v1: phone: type changed from integer to string",
        'registry.member.registered v1: preferred_language: allowed value(s) "ee" removed '
        "(events already published may carry them)",
    ]
    assert notes == []


def test_a_retired_version_is_a_note_not_a_break() -> None:
    document = documents()["registry"]
    messages = document["components"]["messages"]
    old = json.loads(json.dumps(messages["registry.member.registered.v1"]))
    old["x-event-version"] = 0
    messages["registry.member.registered.v0"] = old
    breaking, notes = incompatibilities({"registry.yaml": document})
    assert breaking == []
    assert notes == ["registry.member.registered v0 is no longer in the code (retired)"]


# --- the compatibility rules ---------------------------------------------------


class V1(BaseModel):
    id: UUID
    name: str
    note: str | None = None
    kind: str = "a"
    at: datetime


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(schema_of(V1), schema_of(V1)) == []


def test_an_added_optional_field_is_compatible() -> None:
    class Added(V1):
        channel: str = "email"
        extra: int | None = None

    assert breaking_changes(schema_of(V1), schema_of(Added)) == []


def test_a_changed_description_or_default_is_compatible() -> None:
    old = schema_of(V1)
    new = schema_of(V1)
    new["properties"]["name"]["description"] = "Now documented."
    new["properties"]["kind"]["default"] = "b"
    new["properties"]["name"]["x-personal-data"] = True
    assert breaking_changes(old, new) == []


def test_a_removed_field_is_breaking() -> None:
    class Removed(BaseModel):
        id: UUID
        note: str | None = None
        kind: str = "a"
        at: datetime

    assert breaking_changes(schema_of(V1), schema_of(Removed)) == [
        "name: removed (consumers of this version read it)"
    ]


def test_a_removed_optional_field_is_breaking_too() -> None:
    class Removed(BaseModel):
        id: UUID
        name: str
        kind: str = "a"
        at: datetime

    assert breaking_changes(schema_of(V1), schema_of(Removed)) == [
        "note: removed (consumers of this version read it)"
    ]


def test_a_field_made_required_is_breaking() -> None:
    class Required(BaseModel):
        id: UUID
        name: str
        note: str | None = None
        kind: str
        at: datetime

    assert breaking_changes(schema_of(V1), schema_of(Required)) == [
        "kind: was optional, is now required"
    ]


def test_an_added_required_field_is_breaking() -> None:
    class AddedRequired(V1):
        channel: str

    problems = breaking_changes(schema_of(V1), schema_of(AddedRequired))
    assert len(problems) == 1
    assert problems[0].startswith("channel: added as required (events already published lack it)")


def test_a_changed_type_is_breaking() -> None:
    class Retyped(BaseModel):
        id: UUID
        name: int
        note: str | None = None
        kind: str = "a"
        at: datetime

    assert breaking_changes(schema_of(V1), schema_of(Retyped)) == [
        "name: type changed from string to integer"
    ]


def test_a_changed_format_is_breaking() -> None:
    class Reformatted(BaseModel):
        id: UUID
        name: str
        note: str | None = None
        kind: str = "a"
        at: date

    assert breaking_changes(schema_of(V1), schema_of(Reformatted)) == [
        "at: format changed from 'date-time' to 'date'"
    ]


def test_nullability_is_part_of_the_type() -> None:
    class NotNullable(BaseModel):
        id: UUID
        name: str
        note: str = ""
        kind: str = "a"
        at: datetime

    class Nullable(BaseModel):
        id: UUID
        name: str | None
        note: str | None = None
        kind: str = "a"
        at: datetime

    assert breaking_changes(schema_of(V1), schema_of(NotNullable)) == [
        "note: type changed from string | null to string"
    ]
    assert breaking_changes(schema_of(V1), schema_of(Nullable)) == [
        "name: type changed from string to string | null"
    ]


def test_allowed_values_may_neither_shrink_nor_grow() -> None:
    old = {"type": "object", "properties": {"lang": {"enum": ["fr", "en"], "type": "string"}}}
    fewer = {"type": "object", "properties": {"lang": {"enum": ["fr"], "type": "string"}}}
    more = {
        "type": "object",
        "properties": {"lang": {"enum": ["fr", "en", "ee"], "type": "string"}},
    }
    assert breaking_changes(old, fewer) == [
        'lang: allowed value(s) "en" removed (events already published may carry them)'
    ]
    assert breaking_changes(old, more) == [
        'lang: allowed value(s) "ee" added (consumers of this version reject values they '
        "do not know)"
    ]


def test_nested_objects_and_arrays_are_compared_too() -> None:
    class Address(BaseModel):
        city: str
        country: str

    class Slim(BaseModel):
        city: str

    class Outer(BaseModel):
        home: Address
        past: list[Address] = []

    class OuterSlim(BaseModel):
        home: Slim
        past: list[Slim] = []

    old = asyncapi.inline_refs(schema_of(Outer), schema_of(Outer)["$defs"])
    new = asyncapi.inline_refs(schema_of(OuterSlim), schema_of(OuterSlim)["$defs"])
    # Titles differ (Address, Slim) but titles are documentation, not structure.
    assert breaking_changes(old, new) == [
        "home.country: removed (consumers of this version read it)",
        "past[].country: removed (consumers of this version read it)",
    ]


# --- the documents are valid AsyncAPI 3.0 (structurally) ----------------------

_ID = re.compile(r"^[a-zA-Z0-9.\-_]+$")
_ALLOWED = {
    "document": {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    },
    "info": {
        "title",
        "version",
        "description",
        "termsOfService",
        "contact",
        "license",
        "tags",
        "externalDocs",
    },
    "channel": {
        "address",
        "messages",
        "title",
        "summary",
        "description",
        "servers",
        "parameters",
        "tags",
        "externalDocs",
        "bindings",
    },
    "operation": {
        "action",
        "channel",
        "title",
        "summary",
        "description",
        "security",
        "tags",
        "externalDocs",
        "bindings",
        "traits",
        "messages",
        "reply",
    },
    "message": {
        "headers",
        "payload",
        "correlationId",
        "contentType",
        "name",
        "title",
        "summary",
        "description",
        "tags",
        "externalDocs",
        "bindings",
        "examples",
        "traits",
    },
    "components": {
        "schemas",
        "servers",
        "channels",
        "operations",
        "messages",
        "securitySchemes",
        "serverVariables",
        "parameters",
        "correlationIds",
        "replies",
        "replyAddresses",
        "externalDocs",
        "tags",
        "operationTraits",
        "messageTraits",
        "serverBindings",
        "channelBindings",
        "operationBindings",
        "messageBindings",
    },
    "kafka channel binding": {
        "topic",
        "partitions",
        "replicas",
        "topicConfiguration",
        "bindingVersion",
    },
    "kafka operation binding": {"groupId", "clientId", "bindingVersion"},
    "kafka message binding": {
        "key",
        "schemaIdLocation",
        "schemaIdPayloadEncoding",
        "schemaLookupStrategy",
        "bindingVersion",
    },
}


def _pointer(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"dangling reference {ref}"
        assert part in node, f"dangling reference {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def structural_problems(doc: dict[str, Any]) -> list[str]:
    problems: list[str] = []

    def keys(kind: str, obj: dict[str, Any], where: str) -> None:
        unknown = {k for k in obj if not k.startswith("x-")} - _ALLOWED[kind]
        if unknown:
            problems.append(f"{where}: fields not in AsyncAPI 3.0 {kind}: {sorted(unknown)}")

    if doc.get("asyncapi") != "3.0.0":
        problems.append(f"asyncapi is {doc.get('asyncapi')!r}")
    keys("document", doc, "document")
    info = doc.get("info", {})
    keys("info", info, "info")
    if not isinstance(info.get("title"), str) or not isinstance(info.get("version"), str):
        problems.append("info needs a title and a version")
    keys("components", doc.get("components", {}), "components")
    for ref in _refs(doc):
        try:
            _pointer(doc, ref)
        except AssertionError as error:
            problems.append(str(error))

    messages = doc.get("components", {}).get("messages", {})
    for mid, message in messages.items():
        keys("message", message, f"message {mid}")
        if not _ID.match(mid):
            problems.append(f"message id {mid!r} is not a valid component key")
        for part in ("headers", "payload"):
            try:
                jsonschema.Draft7Validator.check_schema(message.get(part, {}))
            except jsonschema.SchemaError as error:
                problems.append(f"message {mid}: {part} is not a JSON schema: {error.message}")
        if message["headers"].get("type") != "object":
            problems.append(f"message {mid}: headers must be an object schema")
        kafka = message.get("bindings", {}).get("kafka", {})
        keys("kafka message binding", kafka, f"message {mid} kafka binding")

    for cid, channel in doc.get("channels", {}).items():
        keys("channel", channel, f"channel {cid}")
        if not isinstance(channel.get("address"), str):
            problems.append(f"channel {cid}: no address")
        for mid, ref in channel.get("messages", {}).items():
            if ref != {"$ref": f"#/components/messages/{mid}"}:
                problems.append(f"channel {cid}: message {mid} does not point to its component")
        kafka = channel.get("bindings", {}).get("kafka", {})
        keys("kafka channel binding", kafka, f"channel {cid} kafka binding")
        if kafka.get("topic") != channel.get("address"):
            problems.append(f"channel {cid}: kafka topic differs from the address")

    for oid, operation in doc.get("operations", {}).items():
        keys("operation", operation, f"operation {oid}")
        if operation.get("action") not in ("send", "receive"):
            problems.append(f"operation {oid}: action {operation.get('action')!r}")
        channel_ref = operation.get("channel", {}).get("$ref", "")
        match = re.fullmatch(r"#/channels/([^/]+)", channel_ref)
        if not match or match.group(1) not in doc.get("channels", {}):
            problems.append(f"operation {oid}: channel {channel_ref!r} does not exist")
            continue
        cid = match.group(1)
        if not operation.get("messages"):
            problems.append(f"operation {oid}: no messages")
        for ref in operation.get("messages", []):
            # AsyncAPI 3.0: an operation's messages are a subset of its channel's.
            m = re.fullmatch(rf"#/channels/{re.escape(cid)}/messages/([^/]+)", ref.get("$ref", ""))
            if not m or m.group(1) not in doc["channels"][cid].get("messages", {}):
                problems.append(f"operation {oid}: message {ref} is not one of channel {cid}'s")
        kafka = operation.get("bindings", {}).get("kafka", {})
        keys("kafka operation binding", kafka, f"operation {oid} kafka binding")
    return problems


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_documents_are_structurally_valid_asyncapi_3(service: str) -> None:
    assert structural_problems(documents()[service]) == []


def test_the_structural_check_catches_mistakes() -> None:
    doc = documents()["notifications"]
    doc["asyncapi"] = "2.6.0"
    doc["channels"]["registry.members"]["publish"] = {}
    operation = doc["operations"]["receive.registry.members.notifications"]
    operation["messages"].append(
        {"$ref": "#/channels/registry.members/messages/notifications.delivery.failed.v1"}
    )
    doc["operations"]["send.nowhere"] = {"action": "send", "channel": {"$ref": "#/channels/x"}}
    problems = structural_problems(doc)
    assert "asyncapi is '2.6.0'" in problems
    assert any("fields not in AsyncAPI 3.0 channel: ['publish']" in p for p in problems)
    assert any("dangling reference" in p for p in problems)
    assert any("is not one of channel registry.members's" in p for p in problems)
    assert any("channel '#/channels/x' does not exist" in p for p in problems)


def test_what_each_service_sends_and_receives() -> None:
    docs = documents()
    registry, notifications = docs["registry"], docs["notifications"]
    assert {k: v["action"] for k, v in registry["operations"].items()} == {
        "send.registry.members": "send",
        "send.registry.associations": "send",
        "send.registry.duplicates": "send",
        "send.registry.audit": "send",
        # The registry's read models (statistics, search) from its own member events.
        "receive.registry.members.registry-read-models": "receive",
        "deadletter.registry-read-models": "send",
        # The person's access log gathers the other services' audit entries.
        "receive.matching.audit.registry-access-log": "receive",
        "receive.notifications.audit.registry-access-log": "receive",
        "receive.consular.audit.registry-access-log": "receive",
        "receive.returnees.audit.registry-access-log": "receive",
        "deadletter.registry-access-log": "send",
    }
    assert {k: v["action"] for k, v in notifications["operations"].items()} == {
        "send.notifications.deliveries": "send",
        "send.notifications.audit": "send",
        "send.notifications.contacts": "send",
        "receive.registry.members.notifications": "receive",
        "receive.matching.matches.notifications": "receive",
        "receive.matching.missions.notifications": "receive",
        "receive.matching.projects.notifications": "receive",
        # Consular status changes told to the applicant (FR/EN templates).
        "receive.consular.applications.notifications": "receive",
        # Returnees' advisories and awareness subscribers (notifications.advisories).
        "receive.returnees.advisories.notifications": "receive",
        "receive.returnees.subscribers.notifications": "receive",
        "deadletter.notifications": "send",
    }
    receive = notifications["operations"]["receive.registry.members.notifications"]
    assert receive["messages"] == [
        {"$ref": "#/channels/registry.members/messages/registry.member.confirmed.v1"},
        {"$ref": "#/channels/registry.members/messages/registry.member.erased.v1"},
        {"$ref": "#/channels/registry.members/messages/registry.member.identity-verified.v1"},
        {"$ref": "#/channels/registry.members/messages/registry.member.marked-stale.v1"},
        {"$ref": "#/channels/registry.members/messages/registry.member.merged.v1"},
        {"$ref": "#/channels/registry.members/messages/registry.member.registered.v1"},
        {"$ref": "#/channels/registry.members/messages/registry.member.updated.v1"},
    ]
    assert receive["bindings"]["kafka"]["groupId"] == {"type": "string", "enum": ["notifications"]}
    assert notifications["channels"]["notifications.dlq"]["address"] == "notifications.dlq"
    members = registry["channels"]["registry.members"]
    assert members["address"] == REGISTRY_MEMBERS.name
    assert members["bindings"]["kafka"]["partitions"] == REGISTRY_MEMBERS.partitions
    assert members["x-personal-data"] is True


def test_every_contract_is_documented_by_its_producer() -> None:
    docs = documents()
    for contract in all_contracts():
        producer = docs[contract.topic.owner]
        mid = f"{contract.event_type}.v{contract.event_version}"
        assert mid in producer["components"]["messages"]
        assert mid in producer["channels"][contract.topic.name]["messages"]
    assert {t.owner for t in ALL_TOPICS} <= set(SERVICES)


def test_personal_data_marks_are_kept() -> None:
    message = documents()["registry"]["components"]["messages"]["registry.member.registered.v1"]
    props = message["payload"]["properties"]
    marked = {name for name, prop in props.items() if prop.get("x-personal-data")}
    assert marked == MemberRegisteredV1.personal_fields()
    assert "member_id" not in marked


def test_a_service_missing_from_the_mapping_is_an_error() -> None:
    with pytest.raises(ValueError, match="registry"):
        service_views({"notifications": SERVICES["notifications"]})


def test_nested_models_go_to_components_schemas() -> None:
    class Place(BaseModel):
        city: str = personal()
        country: str

    class Moved(Event):
        event_type: ClassVar[str] = "test.person.moved"
        event_version: ClassVar[int] = 1
        topic: ClassVar[Any] = REGISTRY_MEMBERS
        key_field: ClassVar[str] = "person_id"
        description: ClassVar[str] = "Test only; not registered."
        person_id: UUID
        to: Place

    doc = asyncapi_document(
        ServiceView(name="registry", publishes=(Moved,), consumers=()), version="0"
    )
    assert structural_problems(doc) == []
    payload = doc["components"]["messages"]["test.person.moved.v1"]["payload"]
    assert payload["properties"]["to"] == {"$ref": "#/components/schemas/Place"}
    assert doc["components"]["schemas"]["Place"]["properties"]["city"]["x-personal-data"] is True


# --- the documented headers are the ones on the wire ---------------------------


@pytest.mark.parametrize("event", [registered(), delivered()], ids=lambda e: e.event_type)
def test_an_encoded_event_matches_its_message(event: Event) -> None:
    _id, headers, value = encode(
        event,
        source=f"/tg/diaspora/{event.topic.owner}",
        subject=event.aggregate_id(),
        extra_headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    doc = documents()[event.topic.owner]
    message = doc["components"]["messages"][f"{event.event_type}.v{event.event_version}"]
    jsonschema.validate(headers, message["headers"])
    # Nested parts are shared schemas: resolve their $refs against the document.
    payload_schema = {**message["payload"], "components": doc["components"]}
    jsonschema.validate(json.loads(value), payload_schema)
    documented = set(message["headers"]["properties"])
    assert set(headers) <= documented
    assert set(message["headers"]["required"]) <= set(headers)


def test_a_header_that_drifts_from_the_contract_fails_validation() -> None:
    event = registered()
    _id, headers, _value = encode(event, source="/tg/diaspora/registry")
    message = documents()["registry"]["components"]["messages"]["registry.member.registered.v1"]
    headers["ce_dataversion"] = "2"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(headers, message["headers"])


async def test_documented_dead_letter_headers_are_the_ones_a_consumer_writes() -> None:
    written: list[dict[str, str]] = []

    async def sink(
        *, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]
    ) -> None:
        written.append(headers)

    consumer = EventConsumer(
        name="notifications",
        session_factory=async_sessionmaker(),
        inbox=inbox_table(MetaData()),
        dead_letters=sink,
    )
    record = Record(
        topic="registry.members",
        partition=3,
        offset=42,
        key=b"k",
        value=b"{}",
        headers={"ce_specversion": "0.3"},
    )
    assert await consumer.handle_record(record) is Outcome.DEAD_LETTERED
    [headers] = written
    message = documents()["notifications"]["components"]["messages"]["dead-letter.notifications"]
    jsonschema.validate(headers, message["headers"])
    assert {h for h in headers if h.startswith("dlq_")} == set(message["headers"]["properties"])

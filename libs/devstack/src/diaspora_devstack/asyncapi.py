"""AsyncAPI 3.0 documents and the event catalogue, generated from the code.

The contracts, the topic registry and each service's consumers are the only
source: this module turns them into ``docs/asyncapi/<service>.yaml`` (one AsyncAPI
3.0 document per service) and ``docs/events.md`` (the catalogue people read).

    uv run python -m diaspora_devstack.asyncapi write   # regenerate the files
    uv run python -m diaspora_devstack.asyncapi check   # CI: fail if stale or breaking

``check`` fails when the committed files differ from what the code generates, and
when a contract version present in the committed documents changed in a way its
consumers cannot absorb (see :func:`breaking_changes`): such a change needs a new
version, published side by side with the old one.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from diaspora_devstack.services import ENTRY_POINT_GROUP, Service, discover
from diaspora_events import contracts as _contracts  # noqa: F401  (registers every contract)
from diaspora_events.cloudevents import CONTENT_TYPE, SPEC_VERSION, VERSION_ATTRIBUTE, dataschema
from diaspora_events.consumer import EventConsumer
from diaspora_events.contracts.base import PERSONAL_DATA_MARK, Event, all_contracts, contract_for
from diaspora_events.topics import DAY_MS, Topic

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DOCS_DIR = Path("docs")
ASYNCAPI_DIR = DOCS_DIR / "asyncapi"
CATALOGUE = DOCS_DIR / "events.md"
COMMAND = "uv run python -m diaspora_devstack.asyncapi"

# ---------------------------------------------------------------------------
# The services: what each one consumes (its ``diaspora.services`` entry point, see
# diaspora_devstack.services). What it publishes follows from the topic registry (a
# contract is published by the owner of its topic).
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceView:
    """What a service publishes and consumes, as read from the code."""

    name: str
    publishes: tuple[type[Event], ...]
    consumers: tuple[EventConsumer, ...]
    version: str = "0.0.0"
    description: str = ""


def service_views(services: Mapping[str, Service] | None = None) -> list[ServiceView]:
    services = discover() if services is None else services
    published = all_contracts()
    unknown = sorted({c.topic.owner for c in published} - set(services))
    if unknown:
        raise ValueError(
            f"events are published by {unknown}, which declare no {ENTRY_POINT_GROUP!r} "
            "entry point: add one to each service's pyproject.toml so that its events are "
            "documented (see diaspora_devstack.services)"
        )
    return [
        ServiceView(
            name=name,
            publishes=tuple(c for c in published if c.topic.owner == name),
            consumers=tuple(sorted(service.consumers(), key=lambda c: c.name)),
            version=service.version,
            description=service.description,
        )
        for name, service in sorted(services.items())
    ]


# ---------------------------------------------------------------------------
# Header and schema pieces shared by the AsyncAPI documents and the catalogue.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    name: str
    required: bool
    description: str
    schema: Mapping[str, Any] = field(default_factory=dict)


def cloudevent_headers(contract: type[Event] | None = None) -> list[Header]:
    """The Kafka headers of an event in CloudEvents binary mode (see ``cloudevents.encode``).

    With a contract, the attributes fixed by it are constants.
    """

    def fixed(value: str | None) -> dict[str, Any]:
        return {"type": "string"} if value is None else {"type": "string", "const": value}

    event_type = contract.event_type if contract else None
    version = str(contract.event_version) if contract else None
    schema_urn = dataschema(contract.event_type, contract.event_version) if contract else None
    source_example = f"/tg/diaspora/{contract.topic.owner}" if contract else "/tg/diaspora/registry"
    return [
        Header("ce_specversion", True, "CloudEvents version.", fixed(SPEC_VERSION)),
        Header(
            "ce_id",
            True,
            "Event id, a time-ordered UUID (v7). Consumers deduplicate on it.",
            {"type": "string", "format": "uuid"},
        ),
        Header(
            "ce_type",
            True,
            "Event type; consumers route on it together with `ce_dataversion`.",
            fixed(event_type),
        ),
        Header(
            "ce_source",
            True,
            "The producing service, e.g. `/tg/diaspora/registry` (set per service).",
            {"type": "string", "format": "uri-reference", "examples": [source_example]},
        ),
        Header(
            "ce_time",
            True,
            "When the event happened, RFC 3339 in UTC.",
            {"type": "string", "format": "date-time"},
        ),
        Header(
            "ce_dataschema",
            True,
            "The contract: `urn:tg-diaspora:events:<type>:v<version>`.",
            fixed(schema_urn),
        ),
        Header(
            f"ce_{VERSION_ATTRIBUTE}",
            True,
            "Contract version (CloudEvents extension attribute); the type string stays "
            "the same across versions.",
            fixed(version),
        ),
        Header(
            "ce_subject",
            False,
            "Id of the aggregate the event is about, when the producer sets it.",
            {"type": "string"},
        ),
        Header(
            "content-type",
            True,
            "Media type of the record value: the event data as JSON.",
            fixed(CONTENT_TYPE),
        ),
        Header(
            "traceparent",
            False,
            "W3C trace context of the work that caused the event.",
            {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
        ),
        Header("tracestate", False, "W3C trace state, when the trace has any.", {"type": "string"}),
    ]


def dead_letter_headers(consumer: str | None = None) -> list[Header]:
    """The headers a consumer adds when it dead-letters a record (see ``EventConsumer``)."""
    count = {"type": "string", "pattern": "^[0-9]+$"}
    return [
        Header(
            "dlq_consumer",
            True,
            "Name (and consumer group) of the consumer that gave up.",
            {"type": "string", "const": consumer} if consumer else {"type": "string"},
        ),
        Header("dlq_original_topic", True, "Topic the record was read from.", {"type": "string"}),
        Header("dlq_original_partition", True, "Its partition.", count),
        Header("dlq_original_offset", True, "Its offset in that partition.", count),
        Header(
            "dlq_error_type",
            True,
            "Class of the last error: `MalformedEvent` (not a readable CloudEvent), "
            "`UnknownEventType` (no handler for this type and version), `ValidationError` "
            "(data does not match the contract), or whatever the handler raised.",
            {"type": "string"},
        ),
        Header(
            "dlq_error",
            True,
            "Message of the last error, at most 2000 characters.",
            {"type": "string", "maxLength": 2000},
        ),
        Header(
            "dlq_attempts",
            True,
            "How many times the handler was tried (1 when retrying could not help).",
            count,
        ),
        Header(
            "dlq_failed_at",
            True,
            "When the record was dead-lettered, RFC 3339 in UTC.",
            {"type": "string", "format": "date-time"},
        ),
    ]


def _headers_schema(headers: Sequence[Header], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": [h.name for h in headers if h.required],
        "properties": {h.name: {**h.schema, "description": h.description} for h in headers},
        "additionalProperties": {"type": "string"},
    }


_REF_PREFIX = "#/components/schemas/"


def payload_schema(contract: type[Event]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The contract's JSON schema and the nested schemas it refers to.

    Nested models go to ``components/schemas``: a ``#/$defs/...`` reference inside
    a message payload would be resolved against the whole AsyncAPI document.
    """
    schema = contract.model_json_schema(ref_template=_REF_PREFIX + "{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    return schema, defs


def key_schema(contract: type[Event]) -> dict[str, Any]:
    """The record key: the aggregate id, as a string."""
    prop = contract.model_json_schema()["properties"][contract.key_field]
    schema: dict[str, Any] = {"type": "string"}
    if prop.get("type") == "string" and "format" in prop:
        schema["format"] = prop["format"]
    schema["description"] = f"`{contract.key_field}`: id of the aggregate the event is about."
    return schema


def message_id(contract: type[Event]) -> str:
    return f"{contract.event_type}.v{contract.event_version}"


def dead_letter_message_id(consumer: str) -> str:
    return f"dead-letter.{consumer}"


# ---------------------------------------------------------------------------
# The AsyncAPI document of one service.
# ---------------------------------------------------------------------------


def _ref(*parts: str) -> dict[str, str]:
    # JSON pointer escaping: "~" and "/" never occur in our ids, dots are fine.
    return {"$ref": "#/" + "/".join(parts)}


def _kafka_channel_binding(topic: Topic) -> dict[str, Any]:
    config: dict[str, Any] = {"retention.ms": topic.retention_ms}
    if "cleanup.policy" in topic.config:
        config["cleanup.policy"] = topic.config["cleanup.policy"].split(",")
    return {
        "kafka": {
            "topic": topic.name,
            "partitions": topic.partitions,
            "topicConfiguration": config,
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _channel(topic: Topic, messages: Iterable[str], *, key: str) -> dict[str, Any]:
    return {
        "address": topic.name,
        "title": topic.name,
        "description": topic.description,
        "messages": {mid: _ref("components", "messages", mid) for mid in sorted(messages)},
        "bindings": _kafka_channel_binding(topic),
        "x-owner": topic.owner,
        "x-key": key,
        PERSONAL_DATA_MARK: topic.carries_personal_data,
    }


def _message(contract: type[Event], schemas: dict[str, Any]) -> dict[str, Any]:
    payload, defs = payload_schema(contract)
    for name, schema in defs.items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"two different nested schemas are named {name!r}")
        schemas[name] = schema
    return {
        "name": message_id(contract),
        "title": f"{contract.event_type} v{contract.event_version}",
        "summary": contract.description,
        "contentType": CONTENT_TYPE,
        "headers": _headers_schema(
            cloudevent_headers(contract), "CloudEvents 1.0 attributes, Kafka binary mode."
        ),
        "payload": payload,
        "bindings": {
            "kafka": {"key": key_schema(contract), "bindingVersion": KAFKA_BINDING_VERSION}
        },
        "x-event-type": contract.event_type,
        "x-event-version": contract.event_version,
        "x-producer": contract.topic.owner,
        **_sealing(contract),
    }


SEALED_WIRE = (
    "On the wire, the fields marked `x-personal-data` are not in the record value: they "
    'travel sealed in one member `_sealed` = `{alg: "A256GCM", sub: <subject id or '
    "null>, iv: <base64 nonce>, ct: <base64 ciphertext+tag>}`, where `ct` is AES-256-GCM "
    "of the JSON object of those fields under the subject's data key, with associated "
    "data `<ce_id>|<ce_type>|<ce_dataversion>|<sub>` (crypto-shredding, docs/events.md)."
)


def _sealing(contract: type[Event]) -> dict[str, Any]:
    fields = sorted(contract.personal_fields())
    if not fields:
        return {}
    return {
        "description": SEALED_WIRE,
        "x-sealed": {"subject": contract.subject_field, "fields": fields},
    }


def _dead_letter_message(consumer: EventConsumer) -> dict[str, Any]:
    return {
        "name": dead_letter_message_id(consumer.name),
        "title": f"Dead letter of the {consumer.name} consumer",
        "summary": "A record the consumer could not handle, with the reason in its headers.",
        "description": (
            "The original record unchanged (key, value and headers) plus the `dlq_*` headers. "
            "To replay it, publish the value with the original headers (without `dlq_*`) "
            "back to `dlq_original_topic`; the consumer's inbox drops it if it was handled."
        ),
        "headers": _headers_schema(
            dead_letter_headers(consumer.name),
            "The original record's headers (normally the CloudEvents `ce_*` headers and "
            "`traceparent`) plus these.",
        ),
        "payload": {
            "description": "The original record value, byte for byte; usually one of the "
            "events the consumer reads, but possibly unreadable (that may be why it is here)."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record key."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _key_of(contracts: Iterable[type[Event]]) -> str:
    keys = sorted({c.key_field for c in contracts})
    return " / ".join(keys) if keys else "aggregate id"


def asyncapi_document(view: ServiceView, *, version: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of one service."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}

    def add_channel(topic: Topic, contracts: Sequence[type[Event]]) -> None:
        ids = [message_id(c) for c in contracts]
        channel = channels.get(topic.name)
        if channel is None:
            channels[topic.name] = _channel(topic, ids, key=_key_of(contracts))
        else:
            merged = {*channel["messages"], *ids}
            channel["messages"] = {m: _ref("components", "messages", m) for m in sorted(merged)}
        for c in contracts:
            messages[message_id(c)] = _message(c, schemas)

    def message_refs(topic: Topic, contracts: Sequence[type[Event]]) -> list[dict[str, str]]:
        return [_ref("channels", topic.name, "messages", message_id(c)) for c in contracts]

    for topic, contracts in _by_topic(view.publishes):
        add_channel(topic, contracts)
        operations[f"send.{topic.name}"] = {
            "action": "send",
            "channel": _ref("channels", topic.name),
            "title": f"Publish to {topic.name}",
            "summary": f"{view.name} publishes these events through its transactional outbox.",
            "description": (
                "At least once, in order per key. Written in the same database transaction "
                "as the state change they report, then relayed to Kafka (idempotent "
                "producer, acks=all)."
            ),
            "messages": message_refs(topic, contracts),
        }
    for consumer in view.consumers:
        for topic, contracts in _by_topic(consumer.handled_contracts):
            add_channel(topic, contracts)
            operations[f"receive.{topic.name}.{consumer.name}"] = {
                "action": "receive",
                "channel": _ref("channels", topic.name),
                "title": f"{consumer.name} consumes {topic.name}",
                "summary": (
                    f"Handled by the {consumer.name} consumer; other event types on the "
                    "topic are ignored."
                ),
                "description": (
                    "Idempotent: the event id is recorded in the consumer's inbox in the "
                    "handler's transaction, and the offset is committed after it. A failing "
                    f"handler is retried, then the record goes to "
                    f"`{consumer.dead_letter_topic.name}`."
                ),
                "messages": message_refs(topic, contracts),
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [consumer.name]},
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
        dlq = consumer.dead_letter_topic
        dead_id = dead_letter_message_id(consumer.name)
        channels[dlq.name] = _channel(dlq, [dead_id], key="the original record key")
        messages[dead_id] = _dead_letter_message(consumer)
        operations[f"deadletter.{consumer.name}"] = {
            "action": "send",
            "channel": _ref("channels", dlq.name),
            "title": f"{consumer.name} dead-letters a record",
            "summary": "Records the consumer could not handle after its retries.",
            "messages": [_ref("channels", dlq.name, "messages", dead_id)],
        }

    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "id": f"urn:tg-diaspora:services:{view.name}",
        "info": {
            "title": f"{view.name} events",
            "version": version if version is not None else view.version,
            "description": _service_description(view),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": dict(sorted(channels.items())),
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items()))},
    }
    if schemas:
        document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def _by_topic(contracts: Iterable[type[Event]]) -> list[tuple[Topic, list[type[Event]]]]:
    grouped: dict[str, tuple[Topic, list[type[Event]]]] = {}
    for c in sorted(contracts, key=lambda c: (c.event_type, c.event_version)):
        grouped.setdefault(c.topic.name, (c.topic, []))[1].append(c)
    return [grouped[name] for name in sorted(grouped)]


def _service_description(view: ServiceView) -> str:
    doc = view.description
    first = doc.strip().splitlines()[0] if doc.strip() else f"The {view.name} service."
    return (
        f"{first}\n\nGenerated from the code by `{COMMAND} write`; do not edit. Topic names are "
        "those of production: environments sharing a cluster put a prefix before every topic "
        "and consumer group."
    )


# ---------------------------------------------------------------------------
# YAML with a stable layout.
# ---------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):  # type: ignore[misc,unused-ignore]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &anchors: every document reads on its own


def _represent_str(dumper: Any, data: str) -> Any:
    # Multi-line texts as literal blocks: they read (and diff) as written.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(document: Mapping[str, Any]) -> str:
    text: str = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,  # the generator already orders keys; sorting would bury "asyncapi"
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return text


# ---------------------------------------------------------------------------
# Compatibility within one contract version.
# ---------------------------------------------------------------------------


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "") -> list[str]:
    """Why a payload schema ``new`` cannot replace ``old`` within one contract version.

    Consumers of a version must read every event of that version: those already in
    the topics and those published from now on. So within a version, compared
    with ``old``, ``new`` may add optional properties and change descriptions,
    but must not remove a property, require one that was optional or absent
    (events already published lack it), or change a type, format, constant or the
    set of allowed values. Both schemas must be self-contained (see
    :func:`inline_refs`). An empty list means compatible.
    """
    where = path or "payload"
    problems: list[str] = []
    old_types, new_types = _types(old), _types(new)
    if old_types != new_types:
        return [f"{where}: type changed from {type_label(old)} to {type_label(new)}"]
    for keyword in ("format", "const", "$ref"):
        if old.get(keyword) != new.get(keyword):
            return [
                f"{where}: {keyword} changed from {old.get(keyword, '(none)')!r} "
                f"to {new.get(keyword, '(none)')!r}"
            ]
    if "enum" in old or "enum" in new:
        old_values = _json_set(old.get("enum"))
        new_values = _json_set(new.get("enum"))
        if old_values - new_values:
            problems.append(
                f"{where}: allowed value(s) {', '.join(sorted(old_values - new_values))} "
                "removed (events already published may carry them)"
            )
        if new_values - old_values and "enum" in old:
            problems.append(
                f"{where}: allowed value(s) {', '.join(sorted(new_values - old_values))} "
                "added (consumers of this version reject values they do not know)"
            )
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    prefix = f"{path}." if path else ""
    for name in old_props:
        if name not in new_props:
            problems.append(f"{prefix}{name}: removed (consumers of this version read it)")
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(new_required - old_required):
        if name in old_props:
            problems.append(f"{prefix}{name}: was optional, is now required")
        else:
            problems.append(
                f"{prefix}{name}: added as required (events already published lack it); "
                "add it as optional, with a default"
            )
    for name in old_props:
        if name in new_props:
            problems += breaking_changes(old_props[name], new_props[name], f"{prefix}{name}")
    for keyword, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        old_sub, new_sub = old.get(keyword), new.get(keyword)
        if isinstance(old_sub, Mapping) and isinstance(new_sub, Mapping):
            problems += breaking_changes(old_sub, new_sub, f"{where}{suffix}")
        elif old_sub is not None and old_sub != new_sub and new_sub is False:
            problems.append(f"{where}: {keyword} no longer allowed")
    for keyword in ("anyOf", "oneOf", "allOf"):
        old_branches, new_branches = old.get(keyword), new.get(keyword)
        if (
            isinstance(old_branches, list)
            and isinstance(new_branches, list)
            and len(old_branches) == len(new_branches)
        ):
            for i, (a, b) in enumerate(zip(old_branches, new_branches, strict=True)):
                problems += breaking_changes(a, b, f"{where}<{keyword}[{i}]>")
    return problems


def _types(schema: Mapping[str, Any]) -> frozenset[str]:
    """The JSON types a schema admits, as far as its keywords say."""
    if isinstance(schema.get("$ref"), str):
        return frozenset({"$ref"})
    for keyword in ("anyOf", "oneOf"):
        branches = schema.get(keyword)
        if isinstance(branches, list):
            found: set[str] = set()
            for branch in branches:
                found |= _types(branch)
            return frozenset(found)
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        return _types(schema["allOf"][0])
    declared = schema.get("type")
    if isinstance(declared, str):
        return frozenset({declared})
    if isinstance(declared, list):
        return frozenset(declared)
    if "const" in schema:
        return frozenset({_json_type(schema["const"])})
    if isinstance(schema.get("enum"), list):
        return frozenset(_json_type(v) for v in schema["enum"])
    if "properties" in schema:
        return frozenset({"object"})
    return frozenset()  # any


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _json_set(values: Any) -> set[str]:
    return {json.dumps(v) for v in values or ()}


def inline_refs(schema: Any, definitions: Mapping[str, Any]) -> Any:
    """``schema`` with local references (``#/components/schemas/X``, ``#/$defs/X``) replaced."""

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, seen) for item in node]
        if not isinstance(node, Mapping):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in definitions and name not in seen:  # recursive models stay references
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**definitions[name], **rest}, (*seen, name))
        return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}

    return walk(schema, ())


def contract_payload(contract: type[Event]) -> dict[str, Any]:
    """The contract's payload schema, self-contained."""
    schema = contract.model_json_schema()
    resolved: dict[str, Any] = inline_refs(schema, schema.get("$defs", {}))
    return resolved


def incompatibilities(baseline: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Breaking changes of the code against baseline AsyncAPI documents (by file name).

    Returns the breaking changes, and notes on contract versions that the code no
    longer has (retiring a version once its consumers moved on is allowed).
    """
    problems: set[str] = set()
    notes: set[str] = set()
    for document in baseline.values():
        components = document.get("components", {})
        definitions = components.get("schemas", {}) or {}
        for message in (components.get("messages", {}) or {}).values():
            event_type = message.get("x-event-type")
            version = message.get("x-event-version")
            if not isinstance(event_type, str) or not isinstance(version, int):
                continue  # dead letters and the like
            try:
                current = contract_payload(contract_for(event_type, version))
            except LookupError:
                notes.add(f"{event_type} v{version} is no longer in the code (retired)")
                continue
            committed = inline_refs(message.get("payload", {}), definitions)
            for problem in breaking_changes(committed, current):
                problems.add(f"{event_type} v{version}: {problem}")
    return sorted(problems), sorted(notes)


# ---------------------------------------------------------------------------
# The event catalogue (docs/events.md).
# ---------------------------------------------------------------------------


def type_label(schema: Mapping[str, Any]) -> str:
    """A short human-readable type of a JSON schema."""
    if isinstance(schema.get("$ref"), str):
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "const" in schema:
        return json.dumps(schema["const"])
    if isinstance(schema.get("enum"), list):
        return " | ".join(json.dumps(v) for v in schema["enum"])
    for keyword in ("anyOf", "oneOf"):
        if isinstance(schema.get(keyword), list):
            return " | ".join(type_label(branch) for branch in schema[keyword])
    if isinstance(schema.get("allOf"), list) and len(schema["allOf"]) == 1:
        return type_label(schema["allOf"][0])
    declared = schema.get("type")
    if isinstance(declared, list):
        return " | ".join(declared)
    if declared == "array":
        items = schema.get("items")
        return f"array of {type_label(items)}" if isinstance(items, Mapping) else "array"
    if isinstance(declared, str):
        return f"{declared} ({schema['format']})" if "format" in schema else declared
    return "any"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _days(ms: int) -> str:
    days = ms / DAY_MS
    return f"{days:g} days" if ms >= 0 else "unlimited"


_HEADER = """\
<!-- Generated from the code by `{command} write`: do not edit by hand.
     Change the contracts and topics in libs/events, or this text in
     libs/devstack/src/diaspora_devstack/asyncapi.py. -->

# Event catalogue

Every event the services exchange over Kafka: the topics, the event contracts with
their fields (and which of them are personal data), who publishes and who consumes
each one. The contracts live in `libs/events` (`diaspora_events.contracts`, topics in
`diaspora_events.topics`). This page and one AsyncAPI 3.0 document per service are
generated from them:

{documents}

CI runs `{command} check`, which fails when these files
disagree with the code or when a published contract version changed in a breaking way.

## Wire format

One event is one Kafka record in the CloudEvents 1.0 Kafka protocol binding, *binary*
content mode, so any CloudEvents SDK reads it:

- **value**: the event data as UTF-8 JSON, exactly the contract's fields;
- **key**: the id of the aggregate the event is about (the topic's key below), so that
  the events of one aggregate go to one partition and stay in order;
- **headers**: the CloudEvents attributes as `ce_<attribute>`, plus the W3C trace context,
  so that a trace follows a request through the outbox, Kafka and the consumers:

| header | required | meaning |
|---|---|---|
{ce_headers}

Consumers route on (`ce_type`, `ce_dataversion`), never on a class name. Topic names
here are those of production; environments that share a cluster put a prefix before
every topic and consumer group.

## Delivery guarantees

- **Transactional outbox.** A service writes its state change and the events it
  causes in one database transaction. A relay publishes the committed outbox rows to
  Kafka (idempotent producer, `acks=all`) and then marks them published; it never
  skips a row whose transaction commits late.
- **At least once.** A crash between the broker's acknowledgement and that mark
  publishes a row again, so every consumer must tolerate duplicates.
- **Idempotent consumers.** A handler records (consumer, `ce_id`) in its service's
  inbox table in the same transaction as its effects, so a redelivered event is a
  no-op; the offset is committed only after that transaction commits.
- **Order** is guaranteed per key (aggregate), not across keys or topics.
- **Dead letters.** A failing handler is retried with backoff ({max_attempts} attempts by
  default); a record that cannot be decoded or does not match its contract is not
  retried. Either way it goes, unchanged (key, value, headers), to the consumer's
  dead-letter topic `<consumer>.dlq` with these headers added, and the consumer moves on:

| header | meaning |
|---|---|
{dlq_headers}

## Versioning

- A contract is one event type at one version: `ce_type` and `ce_dataversion`
  (and `ce_dataschema`, `urn:tg-diaspora:events:<type>:v<version>`).
- Within a version, changes are **additive only**: a new optional field (with a
  default), a new description. Consumers ignore fields they do not know.
- **Breaking** within a version, and refused by `check`: removing or renaming a field,
  making a field required or adding a required one (events already in the topics
  lack it), changing a field's type, format or allowed values.
- A breaking change is a **new version** (a new contract class, such as
  `MemberRegisteredV2`), published side by side with the old one on the same topic
  and key until every consumer has moved; then the old version is retired.

## Personal data

Fields marked personal data (`x-personal-data: true` in the schemas) are kept out of
logs and traces, and are **encrypted per person** (crypto-shredding): erasing a person
destroys their key, which makes every copy of those fields unreadable at once (topics
from offset 0, dead-letter topics, outbox rows, backups). Events carry only the
personal data their consumers need.

### Crypto-shredding: the wire format

Each contract with personal fields names its **subject** (below, "sealed for"): the
person those fields are about (`member_id`, `holder_id`, the audit's `record_id`; an
association's id for associations). The schemas below are the events as consumers
read them, once opened; on the wire the personal fields are replaced by one member:

```json
"_sealed": {{"alg": "A256GCM", "sub": "<subject id, or null>",
            "iv": "<base64, 96-bit nonce>", "ct": "<base64, ciphertext and tag>"}}
```

- `ct` is AES-256-GCM of the JSON object of the personal fields, under the subject's
  **data key** (DEK, 256 random bits), with associated data
  `<ce_id>|<ce_type>|<ce_dataversion>|<sub>`: a ciphertext moved to another event,
  type, version or person does not open.
- Every other field (ids, dates of the event, routing fields) stays in clear.
- The DEKs live in the registry (`person_keys`), wrapped by a key-encryption key (a
  local file in development, HashiCorp Vault Transit in production). Services other
  than the registry get them from the registry's internal `POST /internal/keys`
  (service role only; never routed by the gateway) through a cache that forgets a
  person on `registry.member.erased` (docs/architecture.md).
- `sub` null, or a subject already erased when the event was written: sealed with a
  throwaway key nobody keeps (never readable).
- A consumer that finds the subject's key **gone** treats the event as about an erased
  person: nothing personal can be read, the handler is not called, the offset moves on
  (no dead letter). Key service down: the consumer waits and retries (no dead letter),
  and its readiness reports `keys`.
- Dead-letter topics carry the record as consumed (sealed); the `dlq_error` reason is
  scrubbed of every personal value of the event.
"""


def catalogue(views: Sequence[ServiceView]) -> str:
    """The text of docs/events.md."""
    consumers_of: dict[tuple[str, int], list[str]] = {}
    for view in views:
        for consumer in view.consumers:
            for c in consumer.handled_contracts:
                label = (
                    view.name if consumer.name == view.name else f"{view.name} ({consumer.name})"
                )
                consumers_of.setdefault((c.event_type, c.event_version), []).append(label)

    documents = "\n".join(f"- [{v.name}](asyncapi/{v.name}.yaml)" for v in views)
    max_attempts = inspect.signature(EventConsumer.__init__).parameters["max_attempts"].default
    lines = [
        _HEADER.format(
            command=COMMAND,
            documents=documents,
            max_attempts=max_attempts,
            ce_headers="\n".join(
                f"| `{h.name}` | {'yes' if h.required else 'no'} | {_cell(_header_meaning(h))} |"
                for h in cloudevent_headers()
            ),
            dlq_headers="\n".join(
                f"| `{h.name}` | {_cell(h.description)} |" for h in dead_letter_headers()
            ),
        )
    ]

    published = [c for v in views for c in v.publishes]
    lines += ["## Topics", ""]
    for topic, contracts in _by_topic(published):
        lines += [
            f"### `{topic.name}`",
            "",
            topic.description,
            "",
            "| | |",
            "|---|---|",
            f"| owner | {topic.owner} |",
            f"| key | `{_key_of(contracts)}` (aggregate id) |",
            f"| partitions | {topic.partitions} |",
            f"| retention | {_days(topic.retention_ms)} |",
            f"| personal data | {'**yes**' if topic.carries_personal_data else 'no'} |",
            "| events | "
            + ", ".join(
                f"[`{c.event_type}` v{c.event_version}](#{message_id(c)})" for c in contracts
            )
            + " |",
            "",
        ]

    dead_letter_topics = sorted(
        ((c.dead_letter_topic, v.name) for v in views for c in v.consumers),
        key=lambda pair: (pair[0].name, pair[1]),
    )
    if dead_letter_topics:
        lines += ["## Dead-letter topics", ""]
        lines += [
            "| topic | service | partitions | retention | personal data |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{t.name}` | {service} | {t.partitions} | {_days(t.retention_ms)} | "
            f"{'**yes**' if t.carries_personal_data else 'no'} |"
            for t, service in dead_letter_topics
        ]
        lines += [""]

    lines += ["## Events", ""]
    for c in sorted(published, key=lambda c: (c.event_type, c.event_version)):
        consumers = consumers_of.get((c.event_type, c.event_version), [])
        lines += [
            f'<a id="{message_id(c)}"></a>',
            "",
            f"### `{c.event_type}` v{c.event_version}",
            "",
            c.description,
            "",
            "| | |",
            "|---|---|",
            f"| type | `{c.event_type}` |",
            f"| version | {c.event_version} |",
            f"| `ce_dataschema` | `{dataschema(c.event_type, c.event_version)}` |",
            f"| topic | `{c.topic.name}`, key `{c.key_field}` |",
            f"| producer | {c.topic.owner} |",
            *(
                [
                    f"| sealed for | `{c.subject_field}` (personal fields travel in "
                    "`_sealed`, see Crypto-shredding) |"
                ]
                if c.personal_fields()
                else []
            ),
            f"| consumers | {', '.join(consumers) if consumers else 'none yet'} |",
            "",
            "| field | type | required | personal data | description |",
            "|---|---|---|---|---|",
        ]
        schema = contract_payload(c)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            notes = [prop.get("description", "")]
            if "default" in prop:
                notes.append(f"Default: `{json.dumps(prop['default'])}`.")
            if name == c.key_field:
                notes.append("The record key.")
            lines.append(
                f"| `{name}` | {_cell(type_label(prop))} | {'yes' if name in required else 'no'} "
                f"| {'**yes**' if prop.get(PERSONAL_DATA_MARK) else ''} "
                f"| {_cell(' '.join(n for n in notes if n))} |"
            )
        lines += [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _header_meaning(header: Header) -> str:
    const = header.schema.get("const")
    return f"{header.description} Always `{const}`." if const else header.description


# ---------------------------------------------------------------------------
# Files and the command line.
# ---------------------------------------------------------------------------


def generate(services: Mapping[str, Service] | None = None) -> dict[Path, str]:
    """Every generated file (path relative to the repository root) and its text."""
    views = service_views(services)
    files = {ASYNCAPI_DIR / f"{v.name}.yaml": to_yaml(asyncapi_document(v)) for v in views}
    files[CATALOGUE] = catalogue(views)
    return files


@dataclass
class CheckResult:
    diffs: list[str]
    breaking: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.diffs and not self.breaking


def _committed_documents(root: Path) -> dict[str, dict[str, Any]]:
    folder = root / ASYNCAPI_DIR
    return {
        path.name: yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for path in sorted(folder.glob("*.yaml"))
    }


def _documents_at(root: Path, ref: str) -> dict[str, dict[str, Any]]:
    """The AsyncAPI documents as committed at a git revision (for CI: the target branch)."""
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{ref}:{ASYNCAPI_DIR.as_posix()}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        return {}  # no documents at that revision yet
    documents = {}
    for name in listing.stdout.split():
        if name.endswith(".yaml"):
            text = subprocess.run(
                ["git", "show", f"{ref}:{(ASYNCAPI_DIR / name).as_posix()}"],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            documents[name] = yaml.safe_load(text) or {}
    return documents


def committed_diffs(root: Path, generated: Mapping[Path, str], *, context: int = 3) -> list[str]:
    """Unified diffs of every committed document that differs from its generated text
    (the AsyncAPI and OpenAPI checks both)."""
    diffs = []
    for relative, text in generated.items():
        path = root / relative
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=f"{relative} (committed)" if path.exists() else "/dev/null",
                        tofile=f"{relative} (generated from the code)",
                        n=context,
                    )
                )
            )
    return diffs


def check(root: Path, *, base: str | None = None) -> CheckResult:
    generated = generate()
    diffs = committed_diffs(root, generated)
    expected = set(generated)
    for path in sorted((root / ASYNCAPI_DIR).glob("*.yaml")):
        if path.relative_to(root) not in expected:
            diffs.append(
                f"{path.relative_to(root)}: no such service any more "
                f"(no {ENTRY_POINT_GROUP!r} entry point)\n"
            )
    baseline = _documents_at(root, base) if base else _committed_documents(root)
    breaking, notes = incompatibilities(baseline)
    return CheckResult(diffs=diffs, breaking=breaking, notes=notes)


def write(root: Path, *, allow_breaking: bool = False) -> tuple[list[Path], list[str]]:
    """Write the generated files; refuses breaking changes unless allowed."""
    breaking, _notes = incompatibilities(_committed_documents(root))
    if breaking and not allow_breaking:
        return [], breaking
    changed = []
    generated = generate()
    for relative, text in generated.items():
        path = root / relative
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(relative)
    for path in sorted((root / ASYNCAPI_DIR).glob("*.yaml")):
        if path.relative_to(root) not in generated:
            path.unlink()
            changed.append(path.relative_to(root))
    return changed, breaking


def find_root(start: Path) -> Path:
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.exists() and "[tool.uv.workspace]" in pyproject.read_text(encoding="utf-8"):
            return folder
    return start


_BREAKING_ADVICE = (
    "A breaking change needs a new version: keep this contract as it was, add a new "
    "contract class with version + 1, and publish both side by side until every consumer "
    "has moved."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diaspora_devstack.asyncapi",
        description="Generate and check docs/asyncapi/<service>.yaml and docs/events.md.",
    )
    parser.add_argument("--root", type=Path, help="repository root (default: found from cwd)")
    commands = parser.add_subparsers(dest="command", required=True)
    write_cmd = commands.add_parser("write", help="regenerate the files from the code")
    write_cmd.add_argument(
        "--allow-breaking",
        action="store_true",
        help="write even if a committed contract version changed incompatibly "
        "(only for a version never released)",
    )
    check_cmd = commands.add_parser(
        "check", help="exit 1 if the files are stale or a contract version broke compatibility"
    )
    check_cmd.add_argument(
        "--base",
        metavar="GIT_REF",
        help="compare compatibility with the documents at this revision (e.g. origin/main) "
        "instead of the files in the work tree",
    )
    args = parser.parse_args(argv)
    root: Path = args.root or find_root(Path.cwd())

    if args.command == "write":
        changed, breaking = write(root, allow_breaking=args.allow_breaking)
        if breaking and not args.allow_breaking:
            _report_breaking(breaking)
            print("Nothing written.", file=sys.stderr)
            return 1
        for path in changed:
            print(f"wrote {path}")
        if not changed:
            print("up to date")
        return 0

    result = check(root, base=args.base)
    for note in result.notes:
        print(f"note: {note}")
    if result.breaking:
        _report_breaking(result.breaking)
    if result.diffs:
        print(
            f"The generated event documentation is out of date; run `{COMMAND} write` "
            "and commit the result:\n",
            file=sys.stderr,
        )
        for diff in result.diffs:
            print(diff, file=sys.stderr)
    if result.ok:
        print("event documentation is up to date and compatible")
    return 0 if result.ok else 1


def _report_breaking(problems: Sequence[str]) -> None:
    print("Incompatible changes to published contract versions:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    print(_BREAKING_ADVICE, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""Kafka ACLs: one principal per service, limited to its own topics (docs/security.md).

Read from the code, like the AsyncAPI documents: each service (its SCRAM user has the
service's name) may

- write, read, create and describe the topics it owns (``<service>.*``) and its consumers'
  dead-letter topics (``<consumer>.dlq``: every consumer's name starts with the service's);
- read and describe the other services' topics its consumers subscribe to, and nothing
  else of theirs;
- use its consumer groups (named after its consumers, so they start with its name too);
- describe every platform topic (names only: a worker checks they exist at start);
- write idempotently (cluster ``IDEMPOTENT_WRITE``).

The brokers run ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``:
whatever is not listed here is refused. ``python -m diaspora_events.acls`` prints the
lines the deployments' setup jobs apply (``kafka-acls.sh`` arguments).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from diaspora_events.topics import ALL_TOPICS

CLUSTER = "kafka-cluster"


@dataclass(frozen=True, order=True)
class Acl:
    principal: str
    resource_type: str  # TOPIC, GROUP, CLUSTER
    pattern_type: str  # LITERAL, PREFIXED
    name: str
    operation: str

    def line(self) -> str:
        """``principal|resourceType|patternType|name|operation`` (devstack's KafkaAcls)."""
        return "|".join(
            (self.principal, self.resource_type, self.pattern_type, self.name, self.operation)
        )

    def kafka_acls_arguments(self) -> list[str]:
        """The same entry as arguments of Kafka's ``kafka-acls.sh --add``."""
        resource = {
            "TOPIC": ["--topic", self.name],
            "GROUP": ["--group", self.name],
            "CLUSTER": ["--cluster"],
        }[self.resource_type]
        return [
            "--allow-principal",
            self.principal,
            "--operation",
            self.operation.title().replace("_", ""),
            *resource,
            "--resource-pattern-type",
            self.pattern_type.lower(),
        ]


def consumed_topics() -> dict[str, set[str]]:
    """The topics each service's consumers subscribe to (unprefixed)."""
    from diaspora_events.asyncapi import service_views

    return {
        view.name: {topic for consumer in view.consumers for topic in consumer.topics}
        for view in service_views()
    }


def service_acls(service: str, consumes: Iterable[str], *, prefix: str = "") -> list[Acl]:
    principal = f"User:{service}"
    own = [
        Acl(principal, "TOPIC", "PREFIXED", prefix + service, operation)
        for operation in ("READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS")
    ]
    groups = [
        Acl(principal, "GROUP", "PREFIXED", prefix + service, operation)
        for operation in ("READ", "DESCRIBE")
    ]
    foreign = [
        Acl(principal, "TOPIC", "LITERAL", prefix + topic, operation)
        for topic in sorted(consumes)
        if not topic.startswith(service)
        for operation in ("READ",)
    ]
    names = [
        Acl(principal, "TOPIC", "LITERAL", prefix + topic.name, "DESCRIBE")
        for topic in ALL_TOPICS
        if topic.owner != service
    ]
    cluster = [Acl(principal, "CLUSTER", "LITERAL", CLUSTER, "IDEMPOTENT_WRITE")]
    return sorted({*own, *groups, *foreign, *names, *cluster})


def platform_acls(*, prefix: str = "") -> dict[str, list[Acl]]:
    return {
        service: service_acls(service, topics, prefix=prefix)
        for service, topics in sorted(consumed_topics().items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diaspora_events.acls", description=__doc__)
    parser.add_argument("--prefix", default="", help="topic prefix of the environment")
    parser.add_argument(
        "--format", choices=["kafka-acls", "lines"], default="kafka-acls", help="output"
    )
    args = parser.parse_args(argv)
    for service, acls in platform_acls(prefix=args.prefix).items():
        print(f"# {service}")
        for acl in acls:
            if args.format == "lines":
                print(acl.line())
            else:
                print(" ".join(acl.kafka_acls_arguments()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

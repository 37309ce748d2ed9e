"""Event contracts and the messaging plumbing every service shares.

- ``contracts``: typed, versioned event models, routed on their type string;
- ``cloudevents``: CloudEvents 1.0 binary mode on Kafka records;
- ``outbox``: the transactional outbox table, writer and relay;
- ``consumer``: idempotent consumers (inbox), retries and dead letters;
- ``runtime``: FastStream subscribers and worker processes;
- ``observability``: structlog JSON logs and OpenTelemetry tracing, one call per service.
"""

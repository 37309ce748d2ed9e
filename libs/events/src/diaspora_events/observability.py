"""One call per service sets up structlog JSON logs and OpenTelemetry tracing."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

_configured_service: str | None = None


def _add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


def setup_observability(
    service_name: str,
    *,
    json_logs: bool = True,
    level: str | None = None,
    span_processor: SpanProcessor | None = None,
) -> None:
    """Configure logging and tracing for ``service_name``; safe to call more than once.

    Spans are exported when ``OTEL_TRACES_EXPORTER`` is ``console`` (stderr) or
    ``otlp`` (``OTEL_EXPORTER_OTLP_ENDPOINT``); tests pass their own processor.
    """
    global _configured_service
    level_name = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_name)
    # aiokafka reports every coordinator hiccup at WARNING/ERROR and retries itself.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))

    structlog.contextvars.bind_contextvars(service=service_name)
    if _configured_service is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = _exporter_from_env()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _configured_service = service_name
    if span_processor is not None:
        provider_now = trace.get_tracer_provider()
        if isinstance(provider_now, TracerProvider):
            provider_now.add_span_processor(span_processor)


def _exporter_from_env() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "none").lower()
    if choice == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if choice == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
                OTLPSpanExporter,
            )
        except ImportError:  # pragma: no cover - depends on the deployment image
            structlog.get_logger().warning("otlp_exporter_missing")
            return None
        exporter: SpanExporter = OTLPSpanExporter()
        return exporter
    return None


def spans_recorded() -> bool:
    """Whether a span started now goes anywhere: an exporter or a test's processor.

    Without one (no ``OTEL_TRACES_EXPORTER``, as in ``make run``), the SDK still builds
    every span and drops it at the end; hot loops (the outbox relay) skip such spans
    and forward the trace context they already carry instead. Unknown providers are
    assumed to record.
    """
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return False
    # The SDK keeps its processors in a private attribute; if that ever changes, record.
    active = getattr(provider, "_active_span_processor", None)
    processors = getattr(active, "_span_processors", None)
    return True if processors is None else bool(processors)


def current_traceparent() -> dict[str, str]:
    """The W3C trace context of the current span, as headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(headers))


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def describe_error(error: BaseException) -> str:
    """An error's description fit for logs and headers: no personal data.

    Database errors are reduced to their class and the driver's message (SQL
    parameters are hidden by the engine); validation errors to their locations and
    messages, never the rejected input.
    """
    from pydantic import ValidationError
    from sqlalchemy.exc import StatementError

    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return f"ValidationError({error.title}): {problems}"
    if isinstance(error, StatementError):
        original = error.orig
        return f"{type(error).__name__}({type(original).__name__}: {original})"
    return f"{type(error).__name__}: {error}"

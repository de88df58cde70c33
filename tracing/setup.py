"""Tracing set-up, once per process and after fork: X-Ray-compatible ids, W3C and X-Ray
headers, a parent-based sampler, the community instrumentations, and the exporters (the
shop's database, and an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT is set).

Called by each entry point: the WSGI application (gunicorn's workers import it after fork;
gunicorn's post_fork hook calls it too, for --preload), the Lambda handlers (through the
WSGI application) and Celery's worker processes (`worker_process_init`, `worker_init`).
Nothing is instrumented with TRACING_ENABLED off: tracing off costs nothing."""

from __future__ import annotations

import logging
import os
import threading

from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_provider = None

SERVICE_BY_DEPLOYMENT = {"all": "shop", "monolith": "monolith", "legacy": "legacy-api", "hotpath": "hotpath"}


def service_name() -> str:
    return os.environ.get("OTEL_SERVICE_NAME") or SERVICE_BY_DEPLOYMENT.get(settings.SHOP_DEPLOYMENT, "shop")


def tracing_init(*, service: str | None = None, django: bool = True) -> bool:
    """Sets tracing up in this process (idempotent; the span processors survive a fork on
    their own). Returns whether tracing is on."""
    global _provider
    if not settings.TRACING_ENABLED:
        return False
    with _lock:
        if _provider is not None:
            return True
        _provider = _provider_build(service or service_name())
        _instrument(django=django)
    return True


def _provider_build(service: str):
    from opentelemetry import trace
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tracing.context import PROPAGATOR
    from tracing.exporter import DatabaseSpanExporter
    from tracing.sampling import sampler

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        id_generator=AwsXRayIdGenerator(),
        # A request that arrives sampled (the edge decided) is traced; one that arrives
        # unsampled costs no recording; a new trace is kept at TRACING_SAMPLE_RATE, and never
        # starts at a lone query or cache call (tracing.sampling).
        sampler=sampler(settings.TRACING_SAMPLE_RATE),
    )
    if settings.TRACING_STORE:
        provider.add_span_processor(
            BatchSpanProcessor(
                DatabaseSpanExporter(),
                schedule_delay_millis=settings.TRACING_EXPORT_DELAY_MS,
                max_export_batch_size=512,
            )
        )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    set_global_textmap(PROPAGATOR)
    return provider


def _instrument(*, django: bool) -> None:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    if django:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        middleware = list(settings.MIDDLEWARE)
        # Right after the edge router: the origin's server span starts once the edge has given
        # the request its trace header (in development the router runs in this process).
        edge = "edge.middleware.EdgeRouterMiddleware"
        position = middleware.index(edge) + 1 if edge in middleware else 0
        DjangoInstrumentor().instrument(middleware_position=position, response_hook=_response_hook)
        # The same middleware, entered only by traced requests (tracing.middleware).
        from tracing.middleware import OTEL_MIDDLEWARE

        settings.MIDDLEWARE = [
            "tracing.middleware.SampledRequestsMiddleware" if m == OTEL_MIDDLEWARE else m for m in settings.MIDDLEWARE
        ]
    from tracing.tasks_quiet import tasks_quiet_connect

    tasks_quiet_connect(CeleryInstrumentor().instrument)
    PsycopgInstrumentor().instrument()
    RedisInstrumentor().instrument()
    URLLib3Instrumentor().instrument()
    BotocoreInstrumentor().instrument()


def _response_hook(span, request, response) -> None:
    # Which order a request made: the hot path's 202 names it in Location.
    if span.is_recording() and response.status_code == 202:
        number = response.get("Location", "").rstrip("/").split("/orders/", 1)[-1].split("/", 1)[0]
        if number:
            span.set_attribute("shop.order.number", number)


def tracing_flush(timeout_ms: int = 5000) -> None:
    """Sends what the processors hold (a worker child about to be recycled, a server stopping)."""
    if _provider is not None:
        try:
            _provider.force_flush(timeout_ms)
        except Exception:  # never fail a shutdown over spans
            logger.exception("could not flush spans")


def tracing_shutdown() -> None:
    """Sends what the processors hold and stops them; once, whoever calls it first."""
    global _provider
    if _provider is None:
        return
    tracing_flush()
    with _lock:
        provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()

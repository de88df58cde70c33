"""The span exporter that keeps spans in the shop's own database.

It runs in the batch processor's thread, off the request path, and writes each batch in one
INSERT. Its own queries are not traced (that would trace the tracing). Secrets are cut out
before anything is written: query strings, path segments that look like tokens (the status
URL's, a signed order link's), and what an error's message quotes of the rows it refused."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.db import connection
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind as OtelKind
from opentelemetry.trace import StatusCode, format_span_id, format_trace_id

from config.redaction import redacted
from tracing.models import Span, SpanKind

logger = logging.getLogger(__name__)

KINDS = {
    OtelKind.INTERNAL: SpanKind.INTERNAL,
    OtelKind.SERVER: SpanKind.SERVER,
    OtelKind.CLIENT: SpanKind.CLIENT,
    OtelKind.PRODUCER: SpanKind.PRODUCER,
    OtelKind.CONSUMER: SpanKind.CONSUMER,
}
# A path segment of 20 or more URL-safe characters with a digit, or a signed value (a:b:c),
# is a secret, percent-encoded or not (a server that gives no raw request line has its URL
# rebuilt with `:` as `%3A`: a signed value cut at its first `%` kept its signature); so is
# whatever follows a hot order's number in its status URL (a random token, which may hold no
# digit at all): /shop/<category>/<product>/orders/<number>/<token>. A segment holding an `@`
# (a mailbox someone put in a URL, raw or percent-encoded) is cut out too: spans are shown to
# every merchant who may read traces, who may not read the buyers' addresses.
TOKEN_SEGMENT = re.compile(
    r"(?<=/orders/)(T[0-9]+/)[^/]+|/(?=[^/]*[0-9])[A-Za-z0-9_\-:.%]{20,}|/[^/]*(?:@|%40)[^/]*", re.IGNORECASE
)
URL_KEYS = ("http.target", "http.url", "url.full", "url.path", "url.query")
KEPT_TYPES = (str, bool, int, float)


def path_redacted(value: str) -> str:
    """A path or URL without its query string, and with token-like segments replaced by '…'."""
    return TOKEN_SEGMENT.sub(lambda m: f"{m.group(1)}…" if m.group(1) else "/…", value.split("?", 1)[0])


def _attributes(span: ReadableSpan) -> dict:
    kept = {}
    for key, value in (span.attributes or {}).items():
        if key in URL_KEYS:
            if key == "url.query":
                continue
            value = path_redacted(str(value))
        elif isinstance(value, tuple | list):
            value = [v for v in value if isinstance(v, KEPT_TYPES)]
        elif not isinstance(value, KEPT_TYPES):
            value = str(value)
        kept[key] = value[:1000] if isinstance(value, str) else value
    if span.status.status_code == StatusCode.ERROR and span.status.description:
        kept["error.message"] = error_message(span.status.description)
    return kept


def error_message(description: str) -> str:
    """An error's first line: its class and what failed, redacted as every log line is (a mail
    server's refusal names the buyer's address). The lines after it are the database's DETAIL,
    HINT and CONTEXT, which quote the rows refused (a buyer's name, email and address)."""
    return redacted(description.strip().split("\n", 1)[0])[:500]


def _peer(attributes: dict) -> str:
    system = attributes.get("db.system") or attributes.get("db.system.name")
    if system:
        return str(system)
    host = attributes.get("server.address") or attributes.get("net.peer.name")
    if host:
        port = attributes.get("server.port") or attributes.get("net.peer.port")
        return f"{host}:{port}" if port else str(host)
    # An HTTP client's instrumentation may name its peer only in the URL: without it, a call
    # that got no answer (the legacy API down) could not be put on its hop of the service map.
    try:
        url = urlsplit(str(attributes.get("http.url") or attributes.get("url.full") or ""))
        return f"{url.hostname}:{url.port}" if url.port else url.hostname or ""
    except ValueError:  # a port that is no number: no peer, rather than a batch not stored
        return ""


def span_row(span: ReadableSpan) -> Span:
    attributes = _attributes(span)
    kind = KINDS.get(span.kind, SpanKind.INTERNAL)
    path = ""
    if kind == SpanKind.SERVER:
        # A server that gives no raw request line (granian) leaves only the full URL.
        url = str(attributes.get("http.url") or attributes.get("url.full") or "")
        path = str(attributes.get("url.path") or attributes.get("http.target") or urlsplit(url).path)[:300]
    parent = span.parent
    status = attributes.get("http.status_code") or attributes.get("http.response.status_code") or 0
    return Span(
        trace_id=format_trace_id(span.context.trace_id),
        span_id=format_span_id(span.context.span_id),
        parent_id=format_span_id(parent.span_id) if parent is not None and parent.is_valid else "",
        parent_remote=bool(parent is not None and parent.is_remote),
        service=str(span.resource.attributes.get("service.name", "shop"))[:64],
        name=span.name[:200],
        kind=kind,
        start=datetime.fromtimestamp(span.start_time / 1e9, tz=UTC),
        duration_us=max(0, (span.end_time - span.start_time) // 1000),
        error=span.status.status_code == StatusCode.ERROR or (kind == SpanKind.SERVER and int(status) >= 500),
        path=path,
        peer=_peer(attributes)[:100] if kind in (SpanKind.CLIENT, SpanKind.PRODUCER) else "",
        attributes=attributes,
    )


class DatabaseSpanExporter(SpanExporter):
    """Writes finished spans to `tracing.Span`, one INSERT per batch."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [span_row(span) for span in spans]
        with suppress_instrumentation():
            for attempt in (1, 2):  # a connection the database dropped (a restart) is opened again once
                try:
                    Span.objects.bulk_create(rows)
                    return SpanExportResult.SUCCESS
                except Exception:
                    connection.close()
                    if attempt == 2:
                        logger.exception("could not store %s span(s)", len(rows))
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        connection.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

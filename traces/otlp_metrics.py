"""OTLP metrics, answered but not kept. An exporter set up the usual way (one
`OTEL_EXPORTER_OTLP_ENDPOINT` for every signal, or an agent framework's own setup,
such as Microsoft Agent Framework's `configure_otel_providers`) sends metrics to
`/v1/metrics` beside its spans and logs. Hivemind's figures come from the runs
themselves, so the export is read, checked, and refused whole by OTLP's partial
success, which says why and what to set; a 404 instead would fill the agent's own
log with export errors every minute."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from .otlp import decode_export, serialize

NOT_KEPT = (
    "Hivemind keeps traces (/v1/traces) and logs (/v1/logs), not metrics: its figures "
    "come from the runs. Set OTEL_METRICS_EXPORTER=none, or send metrics elsewhere "
    "with OTEL_EXPORTER_OTLP_METRICS_ENDPOINT."
)
_DATA = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def decode(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    # Ids appear only in exemplars, which are not read: no hex ids to rewrite.
    return decode_export(body, content_type, ExportMetricsServiceRequest(), _no_ids)


def _no_ids(data: Any) -> None:
    return None


def data_points(request: ExportMetricsServiceRequest) -> int:
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind in _DATA:
                    total += len(getattr(metric, kind).data_points)
    return total


def refused(body: bytes, content_type: str) -> bytes:
    """The answer to a metrics export: every data point rejected, and why (none when
    the export held none)."""
    response = ExportMetricsServiceResponse()
    if points := data_points(decode(body, content_type)):
        response.partial_success.CopyFrom(
            ExportMetricsPartialSuccess(rejected_data_points=points, error_message=NOT_KEPT)
        )
    return serialize(response, content_type)

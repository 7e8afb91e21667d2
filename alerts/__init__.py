"""Alerts: a violation's outbox row → webhook, Slack, Kafka or the log, never lost (docs/design/alerts.md).

Public surface: the ``Alert`` a sink receives, the sinks, the ``DeliveryWorker`` and its
``LedgerOutbox``, the Slack Block Kit builder/validator, and the ``[alerts]`` settings.
"""

from alerts.model import Alert, OutboxAlert
from alerts.outbox import LedgerOutbox
from alerts.settings import AlertsSettings, SinkSettings, alerts_settings
from alerts.sinks import (
    KafkaSink,
    LogSink,
    Sink,
    SlackSink,
    WebhookSink,
    build_sink,
    sign_body,
    verify_signature,
)
from alerts.slack import slack_message, validate_message
from alerts.worker import DeliveryWorker, Outbox

__all__ = [
    "Alert",
    "AlertsSettings",
    "DeliveryWorker",
    "KafkaSink",
    "LedgerOutbox",
    "LogSink",
    "Outbox",
    "OutboxAlert",
    "Sink",
    "SinkSettings",
    "SlackSink",
    "WebhookSink",
    "alerts_settings",
    "build_sink",
    "sign_body",
    "slack_message",
    "validate_message",
    "verify_signature",
]

"""Log lines pass the redactor too: nothing a request carried reaches a log raw.

`RedactingFilter` rewrites each record's message (and its traceback) with every
built-in kind switched on, whatever a workspace's policy says: a log line has no
workspace, and a log is kept longer and read by more people than a trace. It is
installed on Django's console handler (settings.LOGGING), on gunicorn's error
and access logs (hivemind_web/gunicorn_conf.py) and on the Celery worker's and
beat's handlers (hivemind_web/worker.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from functools import lru_cache

from .redaction import POLICY_SWITCHES, Redactor, build_redactor


@lru_cache(maxsize=1)
def log_redactor() -> Redactor:
    return build_redactor(enabled=dict.fromkeys(POLICY_SWITCHES, True))


def redact_log_text(text: str) -> str:
    return log_redactor().text(text, Counter())


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_hivemind_redacted", False):
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep what can be read
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = redact_log_text(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_log_text(record.stack_info)
        record._hivemind_redacted = True
        return True


def install(logger: logging.Logger) -> None:
    """Put the filter on every handler of `logger` (once each)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())

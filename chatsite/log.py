"""Logging helpers."""

import logging

from django.conf import settings


class RedactSecretsFilter(logging.Filter):
    """Replace the upstream API key with a placeholder in any record that contains it."""

    def filter(self, record: logging.LogRecord) -> bool:
        key = settings.AIMLAPI_API_KEY
        if key:
            message = record.getMessage()
            if key in message:
                record.msg = message.replace(key, "[redacted]")
                record.args = None
        return True

"""Logging helpers."""

import logging

from django.conf import settings

from common.secrets import known


class RedactSecretsFilter(logging.Filter):
    """Replace upstream API keys with a placeholder in any record that contains one.

    The keys are the environment's AIMLAPI_API_KEY and every stored key this process has
    decrypted or encrypted (providers.keys remembers them in common.secrets): a key can only reach a log
    line from memory, and only this process's memory can hold it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secrets()
        if not secrets:
            return True
        message = record.getMessage()
        scrubbed = message
        for secret in secrets:
            if secret in scrubbed:
                scrubbed = scrubbed.replace(secret, "[redacted]")
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and not record.exc_text:
            # A traceback is formatted later by the handler; format it now to scrub it too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in secrets:
                record.exc_text = record.exc_text.replace(secret, "[redacted]")
        return True


def _secrets() -> list[str]:
    secrets = set(known())
    if settings.AIMLAPI_API_KEY:
        secrets.add(settings.AIMLAPI_API_KEY)
    # Longest first, so a key that contains another is replaced whole.
    return sorted((secret for secret in secrets if len(secret) >= 4), key=len, reverse=True)


def logging_config(level: str) -> dict:
    """Django's LOGGING: everything to stderr at `level`, through the filter that scrubs secrets."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_secrets": {"()": "common.log.RedactSecretsFilter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]}},
        "root": {"handlers": ["console"], "level": level},
        # Django's own loggers go through the same scrubbed handler, once (not also through
        # Django's default DEBUG-only console handler).
        "loggers": {"django": {"handlers": ["console"], "level": level, "propagate": False}},
    }

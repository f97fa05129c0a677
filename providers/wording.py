"""The sentences a person reads when a reply fails: the one place they are written.

The upstream client raises `UpstreamError` with a code and data; these functions say it for
the person in the chat (`explain`) or the admin testing a key (`explain_key_test`), naming the
upstream that was actually used.
"""

import math
from urllib.parse import urlsplit

from providers.upstream import UpstreamConfig, UpstreamError

# Failures of a reply that chatsite finds before asking the upstream.
KEY_UNREADABLE = (
    "chatsite cannot read its stored API key, so this message was not sent. An admin needs to check "
    "FIELD_ENCRYPTION_KEY (the server log says more); then press Retry."
)
MODEL_NOT_OFFERED = (
    "This chat's model is not offered on this site, so this message was not sent. "
    "Choose a model in this chat's settings, then press Retry."
)
NO_KEY = (
    "No API key is configured for {name}, so this message was not sent. An admin can add one under "
    "Admin › Upstream API keys, or put AIMLAPI_API_KEY=<your key> in the environment or in the .env "
    "file in the chatsite folder and restart chatsite; then press Retry."
)
# What each error status means at the upstream. A person who can do nothing about a key or an
# address is told to ask an admin; the admin's log line names the key (see upstream.client).
_STATUS_TEXTS = {
    "bad_request": "{Name} rejected the request. Check this conversation's settings.",
    "auth": "{Name} refused the API key. Please ask an admin to check it: the server log says which key.",
    "forbidden": (
        "The account at {name} has no credits left or may not use this model. An admin needs to check the account."
    ),
    "not_found": (
        "{Name} does not know this model or address. Please ask an admin to check the model and the upstream's "
        "address: the server log says which key."
    ),
    "unexpected_status": "{Name} answered with an unexpected status.",
    "server_error": "{Name} is having trouble right now. Please try again.",
}
# What could not be read (UpstreamError.detail of a bad_response in a whole reply).
_UNREADABLE = {
    "not JSON": "{Name} sent a reply chatsite could not read (HTTP {status}, not JSON).",
    "unexpected JSON": "{Name} sent a reply chatsite could not read (unexpected JSON).",
    "no choices": "{Name} sent a reply without any choices, so there is no answer to show.",
}


def name(config: UpstreamConfig | None) -> str:
    """The upstream as a sentence names it: the AI/ML API, or the stored key's label, or its address."""
    if config is None:
        return "the upstream"
    hostname = urlsplit(config.base_url).hostname or ""
    if hostname == "aimlapi.com" or hostname.endswith(".aimlapi.com"):
        return "the AI/ML API"
    if config.label:
        return f"the upstream “{config.label}”"
    return f"the upstream at {config.host}"


def explain(error: UpstreamError, config: UpstreamConfig | None = None) -> str:
    """What a person reads about this failure of a reply from the upstream of `config`."""
    named = name(config)
    subject = _capital(named)
    code, detail = error.code, error.detail
    match code:
        case "key_unreadable":
            return KEY_UNREADABLE
        case "model_not_offered":
            return MODEL_NOT_OFFERED
        case "too_long":
            return detail
        case "no_key":
            return NO_KEY.format(name=named)
        case "stopped":
            return "The reply was stopped."
        case "connect_timeout":
            return f"Could not connect to {_name_and_host(named, config)} within {_seconds(config.connect_timeout)}."
        case "timeout":
            return f"{subject} did not answer within {_seconds(config.read_timeout)}. Please try again."
        case "connection":
            where = "AIMLAPI_BASE_URL" if config.key_name == "AIMLAPI_API_KEY" else "the key's base URL in the admin"
            return f"Could not connect to {_name_and_host(named, config)}. Check the network and {where}."
        case "request":
            return f"The request to {named} failed ({detail})."
        case "bad_response" if error.streaming:
            return f"{subject} sent a streamed chunk chatsite could not read."
        case "bad_response":
            return _UNREADABLE[detail].format(Name=subject, status=error.status)
        case "upstream_error":
            during = " during the reply" if error.streaming else ""
            return f"{subject} reported an error{during}" + (f": {detail}" if detail else ".")
        case "stream_cut":
            return (
                f"The connection to {named} closed before the reply was complete. "
                "The text so far is kept; press Retry for a full reply."
            )
        case "budget":
            tries = f" after {error.attempts} attempt{'s' if error.attempts != 1 else ''}" if error.attempts else ""
            last = f" The last problem: {explain(error.last, config)}" if error.last is not None else ""
            return (
                f"{subject} did not start a reply within the {_seconds(config.turn_budget)} allowed for one"
                f"{tries}. Please try again.{last}"
            )
        case "unavailable":
            return (
                f"{subject} is unavailable; try again in {error.retry_after} s. "
                "chatsite stopped asking it for a moment after several failures in a row."
            )
        case "rate_limited":
            wait = f"in {_seconds(error.retry_after)}" if error.retry_after else "in a little while"
            return f"{subject} is receiving too many requests from this site. Try again {wait}.{_http(error)}"
        case _ if code in _STATUS_TEXTS:
            return _STATUS_TEXTS[code].format(name=named, Name=subject) + _http(error)
    raise ValueError(f"no sentence for the upstream error code {code!r}")


def explain_key_test(error: UpstreamError, config: UpstreamConfig) -> str:
    """What the admin reads when "Test key" (GET /models) fails."""
    if error.code == "no_key":
        return "This key is empty."
    if error.code == "bad_response":
        return f"{_capital(name(config))} answered GET /models with something chatsite could not read."
    return explain(error, config)


def _http(error: UpstreamError) -> str:
    """The status and the upstream's own words, after the sentence of an error status."""
    return f" (HTTP {error.status}{': ' + error.detail if error.detail else ''})"


def _name_and_host(named: str, config: UpstreamConfig) -> str:
    return named if named.endswith(config.host) else f"{named} at {config.host}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _seconds(value: float) -> str:
    return f"{value:g} second{'' if value == 1 else 's'}"


def waiting(seconds: float, error: UpstreamError, *, upstream: str = "the upstream") -> str:
    """The pane's words while a failed attempt is retried, instead of "Writing…"."""
    whole = max(1, math.ceil(seconds))
    wait = f"{whole} second{'' if whole == 1 else 's'}"
    if error.status == 429:
        return f"Waiting {wait}: {upstream} is receiving too many requests. Then chatsite tries again…"
    return f"Waiting {wait} before trying again: {upstream} did not answer properly…"

"""The one module that talks to the upstream: an OpenAI-compatible chat completions API.

Nothing else in chatsite imports `requests` or knows about HTTP status codes. Every failure
comes out as `UpstreamError`, whose message is written for the person using the chat and
never contains the API key or the raw response body.
"""

import contextlib
import hashlib
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache
from requests.adapters import HTTPAdapter

from common import counters
from providers.params import validate_params

logger = logging.getLogger(__name__)

_MAX_ERROR_DETAIL = 300


class UpstreamError(Exception):
    """A chat completion did not produce a reply. `str(error)` is fit to show a person."""

    def __init__(self, message: str, *, code: str, retryable: bool, status: int | None = None, retry_after=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class UpstreamConfig:
    """Where the upstream is and how hard to try. Built directly it makes one attempt and has
    no breaker; `from_settings` gives the configured retries, budget and breaker."""

    base_url: str
    api_key: str = field(repr=False)  # never in a repr, a traceback or a log line
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # How an admin finds this key, for the log lines of 401 and the like.
    key_name: str = "AIMLAPI_API_KEY"
    # The stored key's label, which names this upstream in the messages a person reads.
    label: str = ""
    # Further attempts after the first, for failures before any reply text (see _retry_wait).
    retries: int = 0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0
    # A 429 whose Retry-After asks for longer than this is not waited for: it fails at once.
    retry_after_max: float = 20.0
    # Seconds for all attempts and waits of one turn until the reply starts; 0: no limit.
    turn_budget: float = 0.0
    # After this many failures in a row (within breaker_window s), calls fail at once for
    # breaker_cooldown s; 0 turns the breaker off.
    breaker_failures: int = 0
    breaker_window: float = 60.0
    breaker_cooldown: float = 30.0

    @classmethod
    def from_settings(cls) -> "UpstreamConfig":
        return cls(
            base_url=settings.AIMLAPI_BASE_URL,
            api_key=settings.AIMLAPI_API_KEY,
            connect_timeout=settings.AIMLAPI_CONNECT_TIMEOUT,
            read_timeout=settings.AIMLAPI_TIMEOUT,
            retries=settings.AIMLAPI_RETRIES,
            retry_base_delay=settings.AIMLAPI_RETRY_BASE_DELAY,
            retry_max_delay=settings.AIMLAPI_RETRY_MAX_DELAY,
            retry_after_max=settings.AIMLAPI_RETRY_AFTER_MAX,
            turn_budget=settings.AIMLAPI_TURN_BUDGET,
            breaker_failures=settings.AIMLAPI_BREAKER_FAILURES,
            breaker_window=settings.AIMLAPI_BREAKER_WINDOW,
            breaker_cooldown=settings.AIMLAPI_BREAKER_COOLDOWN,
        )

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    @property
    def name(self) -> str:
        """This upstream as a sentence names it: the AI/ML API, or the stored key's label, or its address."""
        hostname = urlsplit(self.base_url).hostname or ""
        if hostname == "aimlapi.com" or hostname.endswith(".aimlapi.com"):
            return "the AI/ML API"
        if self.label:
            return f"the upstream “{self.label}”"
        return f"the upstream at {self.host}"

    @property
    def name_and_host(self) -> str:
        return self.name if self.name.endswith(self.host) else f"{self.name} at {self.host}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _seconds(value: float) -> str:
    return f"{value:g} second{'' if value == 1 else 's'}"


@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str
    model: str
    response_id: str
    latency_ms: int
    usage: dict = field(default_factory=dict)


_local = threading.local()


def _session() -> requests.Session:
    # One pooled session per thread: requests does not promise that a Session is thread-safe.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _local.session = session
    return session


def chat_completion(
    *,
    messages: list[dict],
    model: str,
    params: dict | None = None,
    config: UpstreamConfig | None = None,
    stop: threading.Event | None = None,
    on_wait: "OnWait | None" = None,
) -> Completion:
    """Ask the upstream for the next assistant message; raise UpstreamError on any failure.

    Failures before the reply (see `_send_with_retries`) are tried again within the turn's
    budget; setting `stop` ends the waiting between attempts, and `on_wait` hears of each wait.
    """
    config = config or UpstreamConfig.from_settings()
    body = _request_body(messages, model, params, config)
    started = time.monotonic()
    try:
        response = _send_with_retries(body, config, stream=False, stop=stop, on_wait=on_wait)
        latency_ms = round((time.monotonic() - started) * 1000)
        return _completion_from_response(response, latency_ms=latency_ms, fallback_model=model, config=config)
    except UpstreamError as error:
        _log_failure(error, config)
        raise


def open_stream(
    *,
    messages: list[dict],
    model: str,
    params: dict | None = None,
    config: UpstreamConfig | None = None,
    stop: threading.Event | None = None,
    on_wait: "OnWait | None" = None,
) -> "CompletionStream":
    """Start a streamed completion; raise UpstreamError if it fails before the first chunk.

    Failures before the stream starts are tried again (see `_send_with_retries`); once the
    upstream has answered 200, nothing is sent twice. Iterate the returned stream for the text
    as it arrives; `close()` (from any thread) ends it early. Close it when done, or use it as
    a context manager.
    """
    config = config or UpstreamConfig.from_settings()
    body = _request_body(messages, model, params, config)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    started = time.monotonic()  # the reply's times count from the request, not from its headers
    try:
        response = _send_with_retries(body, config, stream=True, stop=stop, on_wait=on_wait)
    except UpstreamError as error:
        _log_failure(error, config)
        raise
    return CompletionStream(response, config=config, model=model, started=started)


def list_models(*, config: UpstreamConfig) -> list[str]:
    """The model ids the upstream offers with this key (`GET /models`); raise UpstreamError on failure.

    The admin's "Test key" uses it: it proves the key and address work without spending tokens.
    """
    if not config.api_key:
        raise UpstreamError("This key is empty.", code="no_key", retryable=False)
    try:
        response = _session().get(
            config.base_url.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"},
            timeout=(config.connect_timeout, config.read_timeout),
        )
    except requests.RequestException as exc:
        error = _request_failure(exc, config)
        _log_failure(error, config)
        raise error from None
    try:
        if response.status_code >= 400:
            error = _error_from_response(response, config)
            _log_failure(error, config)
            raise error
        try:
            data = response.json()
        except ValueError:
            data = None
    finally:
        response.close()
    items = data.get("data") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise UpstreamError(
            f"{_capital(config.name)} answered GET /models with something chatsite could not read.",
            code="bad_response",
            retryable=True,
        )
    return [str(item.get("id")) for item in items if isinstance(item, dict) and item.get("id")]


def _request_body(messages: list[dict], model: str, params: dict | None, config: UpstreamConfig) -> dict:
    if not config.api_key:
        raise UpstreamError(
            f"No API key is configured for {config.name}, so this message was not sent. An admin can add one under "
            "Admin › Upstream API keys, or put AIMLAPI_API_KEY=<your key> in the environment or in the .env "
            "file in the chatsite folder and restart chatsite; then press Retry.",
            code="no_key",
            retryable=True,
        )
    return {"model": model, "messages": messages, **validate_params(params or {})}


def _log_failure(error: UpstreamError, config: UpstreamConfig) -> None:
    logger.warning(
        "upstream call to %s with %s failed: code=%s status=%s", config.host, config.key_name, error.code, error.status
    )


# Failures worth another attempt: nothing of the reply has arrived, and the cause is likely
# to pass (no connection, rate limited, a gateway or model briefly unavailable). A 500 is not
# retried: it is usually a bug that answers the same way again. A read timeout is not either:
# the upstream may still be working on the first request.
_RETRY_CODES = {"connect_timeout", "connection"}
_RETRY_STATUSES = {429, 502, 503, 504}
# Failures that count towards opening the breaker: the service is not answering properly.
_BREAKER_CODES = {"connect_timeout", "connection", "request", "timeout"}

# Told of a wait before another attempt: (seconds, the failure that caused it); then (0, it)
# when the next attempt starts.
OnWait = Callable[[float, UpstreamError], None]


def _send_with_retries(
    body: dict, config: UpstreamConfig, *, stream: bool, stop: threading.Event | None, on_wait: OnWait | None = None
) -> requests.Response:
    """`_send`, tried again with exponential back-off and full jitter (or after Retry-After)
    while the failure is worth retrying, attempts are left and the turn's budget allows it."""
    deadline = time.monotonic() + config.turn_budget if config.turn_budget else None
    attempt = 0
    while True:
        _breaker_check(config)
        timeout = (config.connect_timeout, config.read_timeout)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _budget_spent(config, attempt)
            timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
        try:
            response = _send(body, config, stream=stream, timeout=timeout)
        except UpstreamError as error:
            _breaker_failure(config, error)
            if error.code in ("timeout", "connect_timeout") and deadline is not None and time.monotonic() >= deadline:
                raise _budget_spent(config, attempt + 1, error) from None
            wait = _retry_wait(error, attempt, config)
            if wait is None:
                raise
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise _budget_spent(config, attempt + 1, error) from None
            attempt += 1
            logger.info(
                "upstream call to %s failed (code=%s status=%s); attempt %d of %d in %.2f s",
                config.host,
                error.code,
                error.status,
                attempt + 1,
                config.retries + 1,
                wait,
            )
            if on_wait is not None:
                on_wait(wait, error)
            if stop is not None and stop.wait(wait):
                raise UpstreamError("The reply was stopped.", code="stopped", retryable=True) from None
            if stop is None:
                time.sleep(wait)
            if on_wait is not None:
                on_wait(0.0, error)
            continue
        _breaker_success(config)
        return response


def _retry_wait(error: UpstreamError, attempt: int, config: UpstreamConfig) -> float | None:
    """Seconds to wait before the next attempt, or None when this failure is final."""
    if attempt >= config.retries:
        return None
    if error.code not in _RETRY_CODES and error.status not in _RETRY_STATUSES:
        return None
    if error.retry_after is not None:
        # The upstream said when: wait exactly that, unless it is longer than we may wait.
        return float(error.retry_after) if error.retry_after <= config.retry_after_max else None
    # Full jitter: anywhere between 0 and the exponential ceiling, so that many clients that
    # failed together do not come back together.
    ceiling = min(config.retry_max_delay, config.retry_base_delay * 2**attempt)
    return random.uniform(0, ceiling)  # noqa: S311 - timing jitter, not a secret


def _budget_spent(config: UpstreamConfig, attempts: int, error: UpstreamError | None = None) -> UpstreamError:
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    last = f" The last problem: {error.message}" if error is not None else ""
    return UpstreamError(
        f"{_capital(config.name)} did not start a reply within the {_seconds(config.turn_budget)} allowed for one"
        f"{tries}. Please try again.{last}",
        code="budget",
        retryable=True,
        status=error.status if error is not None else None,
    )


# --- circuit breaker -----------------------------------------------------------------------
# Its state is in Django's cache: shared by every process and host when REDIS_URL is set, per
# process otherwise. Keys are per base URL, so a second upstream is not affected by the first.
_breaker_urls: set[str] = set()


def _breaker_key(config: UpstreamConfig, name: str) -> str:
    digest = hashlib.sha256(config.base_url.encode()).hexdigest()[:16]
    return f"chatsite:upstream-breaker:{digest}:{name}"


def _breaker_check(config: UpstreamConfig) -> None:
    """Fail at once, without a request, while the breaker of this upstream is open."""
    if not config.breaker_failures:
        return
    until = cache.get(_breaker_key(config, "open-until"))
    left = (until or 0) - time.time()
    if left > 0:
        raise UpstreamError(
            f"{_capital(config.name)} is unavailable; try again in {math.ceil(left)} s. "
            "chatsite stopped asking it for a moment after several failures in a row.",
            code="unavailable",
            retryable=True,
        )


def _breaker_failure(config: UpstreamConfig, error: UpstreamError) -> None:
    if not config.breaker_failures:
        return
    if error.code not in _BREAKER_CODES and not (error.status and error.status >= 500):
        return
    _breaker_urls.add(config.base_url)
    failures = _breaker_key(config, "failures")
    # The window starts at the first failure; a success in between starts counting again.
    count = counters.count(failures, timeout=config.breaker_window)
    # Once it has opened, the first failure after the cool-down opens it again (half-open).
    tripped = cache.get(_breaker_key(config, "tripped"))
    if count >= config.breaker_failures or tripped:
        cache.set(_breaker_key(config, "open-until"), time.time() + config.breaker_cooldown, config.breaker_cooldown)
        cache.set(_breaker_key(config, "tripped"), 1, timeout=config.breaker_cooldown + config.breaker_window)
        cache.delete(failures)
        logger.warning(
            "upstream %s: %d failures in a row, failing fast for %g s", config.host, count, config.breaker_cooldown
        )


def _breaker_success(config: UpstreamConfig) -> None:
    # Always, not only where this process saw the failures: with Redis they may be another's.
    if config.breaker_failures:
        cache.delete_many([_breaker_key(config, "failures"), _breaker_key(config, "tripped")])


def reset_breakers() -> None:
    """Close the breaker of every upstream this process has called (the tests use it)."""
    for base_url in list(_breaker_urls):
        config = UpstreamConfig(base_url=base_url, api_key="", connect_timeout=1, read_timeout=1)
        cache.delete_many([_breaker_key(config, name) for name in ("failures", "tripped", "open-until")])
    _breaker_urls.clear()


def _send(
    body: dict, config: UpstreamConfig, *, stream: bool, timeout: tuple[float, float] | None = None
) -> requests.Response:
    """POST the request once; an error status is read and raised here, before any reply text."""
    headers = {"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}
    if stream:
        # identity: a compressed event stream could only be decoded in whole blocks.
        headers.update({"Accept": "text/event-stream", "Accept-Encoding": "identity"})
    try:
        response = _session().post(
            config.base_url.rstrip("/") + "/chat/completions",
            json=body,
            headers=headers,
            timeout=timeout or (config.connect_timeout, config.read_timeout),
            stream=stream,
        )
    except requests.RequestException as exc:
        raise _request_failure(exc, config) from None
    if response.status_code >= 400:
        try:
            raise _error_from_response(response, config)
        finally:
            response.close()
    return response


def _request_failure(exc: requests.RequestException, config: UpstreamConfig) -> UpstreamError:
    if isinstance(exc, requests.ConnectTimeout):
        return UpstreamError(
            f"Could not connect to {config.name_and_host} within {_seconds(config.connect_timeout)}.",
            code="connect_timeout",
            retryable=True,
        )
    if isinstance(exc, requests.ReadTimeout):
        return _read_timeout(config)
    if isinstance(exc, requests.ConnectionError):
        where = "AIMLAPI_BASE_URL" if config.key_name == "AIMLAPI_API_KEY" else "the key's base URL in the admin"
        return UpstreamError(
            f"Could not connect to {config.name_and_host}. Check the network and {where}.",
            code="connection",
            retryable=True,
        )
    return UpstreamError(f"The request to {config.name} failed ({type(exc).__name__}).", code="request", retryable=True)


def _read_timeout(config: UpstreamConfig) -> UpstreamError:
    return UpstreamError(
        f"{_capital(config.name)} did not answer within {_seconds(config.read_timeout)}. Please try again.",
        code="timeout",
        retryable=True,
    )


def _completion_from_response(
    response: requests.Response, *, latency_ms: int, fallback_model: str, config: UpstreamConfig
) -> Completion:
    try:
        data = response.json()
    except (ValueError, requests.RequestException):
        raise UpstreamError(
            f"{_capital(config.name)} sent a reply chatsite could not read (HTTP {response.status_code}, not JSON).",
            code="bad_response",
            retryable=True,
            status=response.status_code,
        ) from None
    finally:
        response.close()
    return _completion_from_json(data, latency_ms=latency_ms, fallback_model=fallback_model, config=config)


class CompletionStream:
    """The text of a streamed completion as it arrives, read from the server-sent events.

    Each piece is yielded as soon as its bytes arrive: the body is read with `read1`, which
    returns whatever one socket read gives, instead of waiting to fill a buffer. After the
    iteration ends, `finish_reason`, `usage`, `model`, `response_id`, `first_token_ms` and
    `latency_ms` (from the request to the last byte, however the stream ended) describe the
    reply. A failure in the middle raises UpstreamError; the text yielded so
    far stays valid.
    """

    _READ_SIZE = 65536

    def __init__(
        self, response: requests.Response, *, config: UpstreamConfig, model: str, started: float | None = None
    ):
        self._response = response
        self._config = config
        # When the request was sent: a slow first byte is part of the reply's latency.
        self._started = time.monotonic() if started is None else started
        self._cancelled = False
        self._complete = False
        self.model = model
        self.finish_reason = ""
        self.response_id = ""
        self.usage: dict = {}
        self.first_token_ms: int | None = None
        self.latency_ms: int | None = None

    def __enter__(self) -> "CompletionStream":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._complete and not self._cancelled:
            # Read the end of the body so the connection goes back to the pool: the next
            # reply then skips a new TCP (and TLS) handshake.
            self._response.raw.drain_conn()
            self._response.raw.release_conn()
        self._response.close()

    def close(self) -> None:
        """Cancel: end the stream and its upstream connection now; safe to call from another thread."""
        self._cancelled = True
        connection = getattr(self._response.raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            # shutdown, not close: it wakes a thread blocked reading this socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._pieces()
        finally:
            # Stopped or cut too: the time until the last byte arrived.
            if self.latency_ms is None:
                self.latency_ms = self._elapsed_ms()

    def _pieces(self) -> Iterator[str]:
        content_type = self._response.headers.get("Content-Type", "")
        if "text/event-stream" not in content_type:
            # The upstream ignored "stream": true and answered in one piece.
            yield from self._whole_reply()
            return
        for data in self._events():
            if data == "[DONE]":
                self._complete = True
                self.latency_ms = self._elapsed_ms()
                return
            piece = self._read_chunk(data)
            if piece:
                if self.first_token_ms is None:
                    self.first_token_ms = self._elapsed_ms()
                yield piece
        if self._cancelled:
            return
        raise _stream_cut(self._config)

    def _whole_reply(self) -> Iterator[str]:
        completion = _completion_from_response(
            self._response, latency_ms=self._elapsed_ms(), fallback_model=self.model, config=self._config
        )
        self.finish_reason, self.usage = completion.finish_reason, completion.usage
        self.model, self.response_id = completion.model, completion.response_id
        self.first_token_ms = self.latency_ms = self._elapsed_ms()  # the body is read: its last byte is in
        if completion.content:
            yield completion.content

    def _events(self) -> Iterator[str]:
        """The `data` of each server-sent event; comments (keep-alives) and other fields are skipped."""
        buffer = b""
        data_lines: list[str] = []
        for block in self._blocks():
            buffer += block
            *lines, buffer = buffer.split(b"\n")
            for raw_line in lines:
                line = raw_line.rstrip(b"\r").decode("utf-8", errors="replace")
                if not line:
                    if data_lines:
                        yield "\n".join(data_lines)
                        data_lines = []
                elif line.startswith("data:"):
                    data_lines.append(line[5:].removeprefix(" "))
            # Some servers end each event with a single newline: a complete JSON line is an event.
            if data_lines and not buffer and _looks_complete(data_lines[-1]):
                yield "\n".join(data_lines)
                data_lines = []
        if data_lines:
            yield "\n".join(data_lines)

    def _blocks(self) -> Iterator[bytes]:
        raw = self._response.raw
        while not self._cancelled:
            try:
                block = raw.read1(self._READ_SIZE)
            except Exception as exc:  # urllib3 and socket errors differ by version; all mean the same here.
                if self._cancelled:
                    return
                if "timed out" in str(exc).lower():
                    raise _read_timeout(self._config) from None
                logger.info("upstream stream broke: %s", type(exc).__name__)
                raise _stream_cut(self._config) from None
            if not block:
                return
            yield block

    def _read_chunk(self, data: str) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise UpstreamError(
                f"{_capital(self._config.name)} sent a streamed chunk chatsite could not read.",
                code="bad_response",
                retryable=True,
            ) from None
        if not isinstance(chunk, dict):
            return ""
        if "error" in chunk and not chunk.get("choices"):
            detail = _error_detail(chunk, self._config)
            raise UpstreamError(
                f"{_capital(self._config.name)} reported an error during the reply"
                + (f": {detail}" if detail else "."),
                code="upstream_error",
                retryable=True,
            )
        self.response_id = self.response_id or str(chunk.get("id") or "")
        self.model = str(chunk.get("model") or self.model)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = _usage(usage)
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        content = delta.get("content")
        return content if isinstance(content, str) else ""

    def _elapsed_ms(self) -> int:
        return round((time.monotonic() - self._started) * 1000)


def _stream_cut(config: UpstreamConfig) -> UpstreamError:
    return UpstreamError(
        f"The connection to {config.name} closed before the reply was complete. "
        "The text so far is kept; press Retry for a full reply.",
        code="stream_cut",
        retryable=True,
    )


def _looks_complete(line: str) -> bool:
    return line == "[DONE]" or (line.startswith("{") and line.endswith("}"))


def _completion_from_json(data, *, latency_ms: int, fallback_model: str, config: UpstreamConfig) -> Completion:
    if not isinstance(data, dict):
        raise UpstreamError(
            f"{_capital(config.name)} sent a reply chatsite could not read (unexpected JSON).",
            code="bad_response",
            retryable=True,
        )
    choices = data.get("choices")
    if "error" in data and not choices:
        detail = _error_detail(data, config)
        raise UpstreamError(
            f"{_capital(config.name)} reported an error" + (f": {detail}" if detail else "."),
            code="upstream_error",
            retryable=True,
        )
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError(
            f"{_capital(config.name)} sent a reply without any choices, so there is no answer to show.",
            code="bad_response",
            retryable=True,
        )
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return Completion(
        content=content if isinstance(content, str) else "",
        finish_reason=str(choice.get("finish_reason") or ""),
        model=str(data.get("model") or fallback_model),
        response_id=str(data.get("id") or ""),
        latency_ms=latency_ms,
        usage=_usage(usage),
    )


def _usage(usage: dict) -> dict:
    return {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if _is_count(usage.get(k))}


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What each error status means at the upstream, said for a person: (code, retryable, text).
# A person who can do nothing about a key or an address is told to ask an admin; the admin's
# log line names the key (see _log_failure).
_STATUS_ERRORS = {
    400: ("bad_request", False, "{Name} rejected the request. Check this conversation's settings."),
    401: (
        "auth",
        False,
        "{Name} refused the API key. Please ask an admin to check it: the server log says which key.",
    ),
    403: (
        "forbidden",
        False,
        "The account at {name} has no credits left or may not use this model. An admin needs to check the account.",
    ),
    404: (
        "not_found",
        False,
        "{Name} does not know this model or address. Please ask an admin to check the model and the upstream's "
        "address: the server log says which key.",
    ),
    422: ("bad_request", False, "{Name} rejected the request. Check this conversation's settings."),
}


def _error_from_response(response: requests.Response, config: UpstreamConfig) -> UpstreamError:
    status = response.status_code
    try:
        detail = _error_detail(response.json(), config)
    except ValueError:
        detail = ""
    suffix = f" (HTTP {status}{': ' + detail if detail else ''})"
    if status == 429:
        retry_after = _retry_after(response)
        wait = f"Try again in {_seconds(retry_after)}." if retry_after else "Try again in a little while."
        text = f"{_capital(config.name)} is receiving too many requests from this site. {wait}"
        return UpstreamError(text + suffix, code="rate_limited", retryable=True, status=status, retry_after=retry_after)
    if status >= 500:
        text = f"{_capital(config.name)} is having trouble right now. Please try again."
        retry_after = _retry_after(response) if status == 503 else None
        return UpstreamError(text + suffix, code="server_error", retryable=True, status=status, retry_after=retry_after)
    code, retryable, text = _STATUS_ERRORS.get(
        status, ("unexpected_status", False, "{Name} answered with an unexpected status.")
    )
    text = text.format(name=config.name, Name=_capital(config.name))
    return UpstreamError(text + suffix, code=code, retryable=retryable, status=status)


def _error_detail(data, config: UpstreamConfig) -> str:
    """The human-readable message from either error body shape, trimmed and without the key."""
    message = ""
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or ""
        elif isinstance(error, str):
            message = error
        if not message:
            message = data.get("message") or ""
    if not isinstance(message, str):
        return ""
    message = " ".join(message.split())
    if config.api_key:
        message = message.replace(config.api_key, "[redacted]")
    if len(message) > _MAX_ERROR_DETAIL:
        message = message[: _MAX_ERROR_DETAIL - 1] + "…"
    return message


def _retry_after(response: requests.Response) -> int | None:
    """Seconds to wait, from a Retry-After header given in seconds or as an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, math.ceil((when - datetime.now(UTC)).total_seconds()))

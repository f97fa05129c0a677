"""The calls chatsite makes to the upstream: a whole reply, a streamed reply, the model list."""

import logging
import threading
import time

import requests

from providers.params import validate_params

from . import completion, retries, session
from .config import UpstreamConfig
from .errors import UpstreamError
from .stream import CompletionStream

logger = logging.getLogger(__name__)


def chat_completion(
    *,
    messages: list[dict],
    model: str,
    params: dict | None = None,
    config: UpstreamConfig | None = None,
    stop: threading.Event | None = None,
    on_wait: retries.OnWait | None = None,
) -> completion.Completion:
    """Ask the upstream for the next assistant message; raise UpstreamError on any failure.

    Failures before the reply (see `retries.post`) are tried again within the turn's budget;
    setting `stop` ends the waiting between attempts, and `on_wait` hears of each wait.
    """
    config = config or UpstreamConfig.from_settings()
    body = _request_body(messages, model, params, config)
    started = time.monotonic()
    try:
        response = retries.post(body, config, stream=False, stop=stop, on_wait=on_wait)
        latency_ms = round((time.monotonic() - started) * 1000)
        return completion.from_response(response, latency_ms=latency_ms, fallback_model=model, config=config)
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
    on_wait: retries.OnWait | None = None,
) -> CompletionStream:
    """Start a streamed completion; raise UpstreamError if it fails before the first chunk.

    Failures before the stream starts are tried again (see `retries.post`); once the upstream
    has answered 200, nothing is sent twice. Iterate the returned stream for the text as it
    arrives; `close()` (from any thread) ends it early. Close it when done, or use it as a
    context manager.
    """
    config = config or UpstreamConfig.from_settings()
    body = _request_body(messages, model, params, config)
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    started = time.monotonic()  # the reply's times count from the request, not from its headers
    try:
        response = retries.post(body, config, stream=True, stop=stop, on_wait=on_wait)
    except UpstreamError as error:
        _log_failure(error, config)
        raise
    return CompletionStream(response, config=config, model=model, started=started)


def list_models(*, config: UpstreamConfig) -> list[str]:
    """The model ids the upstream offers with this key (`GET /models`); raise UpstreamError on failure.

    The admin's "Test key" uses it: it proves the key and address work without spending tokens.
    """
    if not config.api_key:
        raise UpstreamError("no_key")
    try:
        response = session.session().get(
            config.base_url.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"},
            timeout=(config.connect_timeout, config.read_timeout),
        )
    except requests.RequestException as exc:
        error = session.request_failure(exc)
        _log_failure(error, config)
        raise error from None
    try:
        if response.status_code >= 400:
            error = session.error_from_response(response, config)
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
        raise UpstreamError("bad_response", detail="no model list")
    return [str(item.get("id")) for item in items if isinstance(item, dict) and item.get("id")]


def _request_body(messages: list[dict], model: str, params: dict | None, config: UpstreamConfig) -> dict:
    if not config.api_key:
        raise UpstreamError("no_key")
    return {"model": model, "messages": messages, **validate_params(params or {})}


def _log_failure(error: UpstreamError, config: UpstreamConfig) -> None:
    logger.warning(
        "upstream call to %s with %s failed: code=%s status=%s", config.host, config.key_name, error.code, error.status
    )

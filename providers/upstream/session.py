"""One POST or GET to the upstream: pooled sessions, timeouts, and an error status read into
an UpstreamError before any reply text."""

import math
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter

from .config import UpstreamConfig
from .errors import UpstreamError, detail_of

_local = threading.local()

# The code of each error status that is neither 429 nor 5xx.
_STATUS_CODES = {400: "bad_request", 401: "auth", 403: "forbidden", 404: "not_found", 422: "bad_request"}


def session() -> requests.Session:
    """This thread's pooled session: requests does not promise that a Session is thread-safe."""
    current = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
        current.mount("http://", adapter)
        current.mount("https://", adapter)
        _local.session = current
    return current


def post(
    body: dict, config: UpstreamConfig, *, stream: bool, timeout: tuple[float, float] | None = None
) -> requests.Response:
    """POST the request once; an error status is read and raised here, before any reply text."""
    headers = {"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}
    if stream:
        # identity: a compressed event stream could only be decoded in whole blocks.
        headers.update({"Accept": "text/event-stream", "Accept-Encoding": "identity"})
    try:
        response = session().post(
            config.base_url.rstrip("/") + "/chat/completions",
            json=body,
            headers=headers,
            timeout=timeout or (config.connect_timeout, config.read_timeout),
            stream=stream,
        )
    except requests.RequestException as exc:
        raise request_failure(exc) from None
    if response.status_code >= 400:
        try:
            raise error_from_response(response, config)
        finally:
            response.close()
    return response


def request_failure(exc: requests.RequestException) -> UpstreamError:
    if isinstance(exc, requests.ConnectTimeout):
        return UpstreamError("connect_timeout")
    if isinstance(exc, requests.ReadTimeout):
        return UpstreamError("timeout")
    if isinstance(exc, requests.ConnectionError):
        return UpstreamError("connection")
    return UpstreamError("request", detail=type(exc).__name__)


def error_from_response(response: requests.Response, config: UpstreamConfig) -> UpstreamError:
    status = response.status_code
    try:
        detail = detail_of(response.json(), config.api_key)
    except ValueError:
        detail = ""
    if status == 429:
        return UpstreamError("rate_limited", status, _retry_after(response), detail)
    if status >= 500:
        return UpstreamError("server_error", status, _retry_after(response) if status == 503 else None, detail)
    return UpstreamError(_STATUS_CODES.get(status, "unexpected_status"), status, detail=detail)


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

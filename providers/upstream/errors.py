"""The one error the upstream client raises: what went wrong, as data.

It holds no sentence. `providers.wording` turns it into the words a person reads, so the
client knows no screen and the words are written in one place.
"""

# Codes that answer the same way when asked again: the request, the key or the model must
# change first. Every other failure may pass (a network, a busy or briefly broken upstream).
_FINAL_CODES = frozenset({"bad_request", "auth", "forbidden", "not_found", "unexpected_status", "too_long"})


class UpstreamError(Exception):
    """A call to the upstream produced no reply, or broke off in the middle of one.

    `code` names the failure (it is stored with the message and its usage row); `status` is the
    HTTP status, `retry_after` the seconds the upstream asked to wait, `detail` what the upstream
    said (trimmed, without the key) or, for `bad_response`, what could not be read. `streaming`:
    raised while reading a streamed reply, after it started. A `budget` error tells the
    `attempts` made and the `last` failure.
    """

    def __init__(
        self,
        code: str,
        status: int | None = None,
        retry_after: int | None = None,
        detail: str = "",
        *,
        streaming: bool = False,
        attempts: int = 0,
        last: "UpstreamError | None" = None,
    ):
        super().__init__(code, status, detail)
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.detail = detail
        self.streaming = streaming
        self.attempts = attempts
        self.last = last

    @property
    def retryable(self) -> bool:
        """Worth pressing Retry for: the same request may succeed later."""
        return self.code not in _FINAL_CODES

    def __str__(self) -> str:
        # For log lines: the data, never a sentence (see providers.wording).
        status = f" HTTP {self.status}" if self.status else ""
        return f"{self.code}{status}{': ' + self.detail if self.detail else ''}"


_MAX_DETAIL = 300


def detail_of(data, api_key: str) -> str:
    """The upstream's own message from either error body shape, trimmed and without the key."""
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
    if api_key:
        message = message.replace(api_key, "[redacted]")
    if len(message) > _MAX_DETAIL:
        message = message[: _MAX_DETAIL - 1] + "…"
    return message

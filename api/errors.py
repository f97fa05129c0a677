"""The API's one error: OpenAI's error shape, `{"error": {"message", "type", "code"}}`, with its status."""

from django.http import JsonResponse

from providers import wording
from providers.upstream import UpstreamConfig, UpstreamError

# OpenAI's error types by status, so the official clients raise the matching exception class.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str, param: str | None = None, retry_after=None):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.retry_after = status, message, code, param, retry_after

    def body(self) -> dict:
        kind = _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        if self.retry_after:
            response["Retry-After"] = str(int(self.retry_after))
        if self.status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="chatsite"'
        return response


# The status a caller gets for each upstream failure: 502 when the upstream answered badly, 503
# when it is unavailable or busy, 504 when it did not answer in time, 500 for our own key.
_UPSTREAM_STATUS = {
    "connect_timeout": 504,
    "timeout": 504,
    "budget": 504,
    "unavailable": 503,
    "rate_limited": 503,
    "server_error": 503,
    "key_unreadable": 500,
    "no_key": 500,
}


def from_upstream(error: UpstreamError, config: UpstreamConfig | None) -> ApiError:
    """An upstream failure as the caller sees it: the sentence the chat page shows, and a 5xx.

    The upstream's own 4xx (its key refused, no credits) is the site's problem, not the caller's,
    so it is a 502 too: a caller's 401 means only that their chatsite token was refused.
    """
    status = _UPSTREAM_STATUS.get(error.code, 502)
    retry_after = error.retry_after if status == 503 else None
    return ApiError(status, wording.explain(error, config), code=f"upstream_{error.code}", retry_after=retry_after)

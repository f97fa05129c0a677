"""Error responses a person can read: a small page, or for htmx a line of text that chat.js shows."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many requests",
    500: "Server error",
}


def error_response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.headers.get("HX-Request") == "true":
        # htmx does not swap error responses; chat.js puts this text in the toast.
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    signed_in = getattr(getattr(request, "user", None), "is_authenticated", False)
    context = {"status": status, "title": TITLES.get(status, "Error"), "message": message, "signed_in": signed_in}
    html = render_to_string("error.html", context)
    return HttpResponse(html, status=status)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return error_response(request, 413, "The request is too large. Shorten the message and send it again.")
    return error_response(request, 400, "The request could not be understood.")


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(request, 403, "You do not have permission to do that.")


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return error_response(request, 404, "There is nothing here, or it belongs to someone else.")


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500, "Something went wrong on our side. What you had saved is still there.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return error_response(
        request, 403, "The form had expired or came from another site. Reload the page and try again."
    )


class ReadableErrorsMiddleware:
    """Gives a body to the 405 that `require_POST` and friends answer with an empty one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 405 and not getattr(response, "streaming", False) and not response.content:
            readable = error_response(request, 405, f"{request.method} is not allowed here.")
            readable["Allow"] = response.get("Allow", "")
            return readable
        return response

"""CORS for /v1/: off unless API_CORS_ORIGINS names the web pages that may call the API."""

from django.conf import settings
from django.http import HttpResponse


def _allowed(request) -> str | None:
    origin = request.headers.get("Origin")
    return origin if origin and origin in settings.API_CORS_ORIGINS else None


def allow(request, response):
    origin = _allowed(request)
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


def preflight(request, methods) -> HttpResponse:
    response = HttpResponse(status=204)
    if _allowed(request):
        response["Access-Control-Allow-Methods"] = ", ".join(methods)
        response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response["Access-Control-Max-Age"] = "600"
    return allow(request, response)

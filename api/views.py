"""The /v1/ endpoints: OpenAI's shapes, authenticated by a personal token and nothing else.

No session, no CSRF (no cookie is read), and the site's sign-in redirect does not apply: a
refusal is a 401 in OpenAI's error shape, which tools understand.
"""

import functools
import time

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from api import body, cors, relay
from api.errors import ApiError
from api.tokens import authenticate


def api_view(*methods: str):
    """A /v1/ view: token authentication, the allowed methods, and every ApiError as OpenAI's shape."""

    def decorate(view):
        @csrf_exempt
        @login_not_required
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "OPTIONS":
                return cors.preflight(request, methods)
            try:
                if request.method not in methods:
                    raise ApiError(405, f"{request.method} is not allowed here.", code="method_not_allowed")
                response = view(request, authenticate(request), *args, **kwargs)
            except ApiError as error:
                response = error.response()
            return cors.allow(request, response)

        return wrapped

    return decorate


@api_view("GET")
def models(request, token):
    """The models this person may name in a request."""
    created = int(time.time())
    data = [
        {"id": model.model_id, "object": "model", "created": created, "owned_by": "chatsite"}
        for model in body.offered_models(token.owner)
    ]
    return JsonResponse({"object": "list", "data": data})


@api_view("POST")
def chat_completions(request, token):
    chat = body.parse(request, user=token.owner)
    relay.check_limits(token.owner)
    call = relay.Call(token.owner, chat, store=chat.store or token.store_history)
    if not chat.stream:
        return JsonResponse(call.whole())
    response = StreamingHttpResponse(call.stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would hold the pieces back otherwise
    return response


@csrf_exempt
@login_not_required
def not_found(request, rest: str = ""):
    return ApiError(404, "There is no such endpoint under /v1/.", code="unknown_url").response()

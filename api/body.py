"""A /v1/chat/completions body, checked as the chat page checks a message: shape, model, bounds."""

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from api.errors import ApiError
from providers import catalogue
from providers.params import validate_params

ROLES = ("system", "user", "assistant")
# Fields a caller may send that change nothing here: OpenAI's clients send some by default.
_IGNORED = frozenset({"user", "metadata", "n", "stream", "stream_options", "store", "model", "messages"})
# OpenAI's name for max_tokens in newer clients.
_ALIASES = {"max_completion_tokens": "max_tokens"}


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict]
    params: dict
    stream: bool
    include_usage: bool
    store: bool


def parse(request, *, user) -> ChatRequest:
    """The checked request of `user`; raise ApiError 400 for a bad body, 404 for a model not
    offered and 403 for one the catalogue keeps from them."""
    try:
        body = json.loads(request.body or b"null")
    except RequestDataTooBig:
        raise ApiError(413, "The request is too large (REQUEST_MAX_BYTES).", code="request_too_large") from None
    except ValueError:
        raise ApiError(400, "The body must be JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.", code="invalid_json")
    model = _model(body.get("model"), user)
    messages = _messages(body.get("messages"))
    if body.get("n") not in (None, 1):
        raise ApiError(400, "Only one choice (n=1) is supported.", code="unsupported_parameter", param="n")
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError(400, "stream_options must be an object.", code="invalid_value", param="stream_options")
    include_usage = _flag(options or {}, "include_usage", param="stream_options.include_usage")
    return ChatRequest(
        model=model,
        messages=messages,
        params=_params(body),
        stream=stream,
        include_usage=include_usage,
        store=_flag(body, "store"),
    )


def _model(value, user) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "Name a model: `model` is required.", code="invalid_value", param="model")
    if value not in {model.model_id for model in offered_models()}:
        message = f"The model {value[:200]!r} does not exist or is not offered here."
        raise ApiError(404, message, code="model_not_found", param="model")
    if not catalogue.may_use(user, value):
        message = f"The model {value!r} is kept for some groups on this site, and your account is not in one."
        raise ApiError(403, message, code="model_not_allowed", param="model")
    return value


def offered_models(user=None) -> list:
    """The models a caller may name: the catalogue's enabled ones (those `user` may use), or
    AIMLAPI_MODEL when the catalogue is empty.

    As on the chat page (providers.catalogue), AIMLAPI_MODEL is offered unless the catalogue turned it off.
    """
    models = catalogue.enabled_chat_models(user)
    default = settings.AIMLAPI_MODEL
    if default and default not in catalogue.chat_catalogue():  # listed: offered above, if at all
        models.append(_Listed(model_id=default, display_name=default))
    return models


@dataclass(frozen=True)
class _Listed:
    model_id: str
    display_name: str


def _messages(value) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ApiError(400, "`messages` must be a non-empty list.", code="invalid_value", param="messages")
    clean = []
    for number, message in enumerate(value):
        param = f"messages[{number}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ApiError(400, f"{param} needs a role: one of {', '.join(ROLES)}.", code="invalid_value", param=param)
        content = _text(message.get("content"), param)
        if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise ApiError(
                400,
                f"{param} is longer than {settings.CHAT_MAX_MESSAGE_CHARS:,} characters.",
                code="message_too_long",
                param=param,
            )
        clean.append({"role": message["role"], "content": content})
    return clean


def _text(content, param: str) -> str:
    """A message's text: a string, or OpenAI's list of text parts (images are not supported)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(_is_text_part(part) for part in content):
        return "".join(part["text"] for part in content)
    raise ApiError(400, f"{param}.content must be text.", code="invalid_value", param=f"{param}.content")


def _is_text_part(part) -> bool:
    return isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)


def _params(body: dict) -> dict:
    params = {}
    for name, value in body.items():
        if name in _IGNORED:
            continue
        target = _ALIASES.get(name, name)
        if target not in ("temperature", "top_p", "max_tokens"):
            message = f"The parameter {name[:100]!r} is not supported."
            raise ApiError(400, message, code="unsupported_parameter", param=name)
        params[target] = value
    try:
        return validate_params(params)
    except ValueError as error:
        raise ApiError(400, str(error), code="invalid_value") from None


def _flag(body: dict, name: str, *, param: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"{param or name} must be true or false.", code="invalid_value", param=param or name)
    return value

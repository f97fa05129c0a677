"""A whole (not streamed) reply, read from the upstream's JSON."""

from dataclasses import dataclass, field

import requests

from .config import UpstreamConfig
from .errors import UpstreamError, detail_of


@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str
    model: str
    response_id: str
    latency_ms: int
    usage: dict = field(default_factory=dict)


def from_response(
    response: requests.Response, *, latency_ms: int, fallback_model: str, config: UpstreamConfig
) -> Completion:
    try:
        data = response.json()
    except (ValueError, requests.RequestException):
        raise UpstreamError("bad_response", response.status_code, detail="not JSON") from None
    finally:
        response.close()
    return from_json(data, latency_ms=latency_ms, fallback_model=fallback_model, config=config)


def from_json(data, *, latency_ms: int, fallback_model: str, config: UpstreamConfig) -> Completion:
    if not isinstance(data, dict):
        raise UpstreamError("bad_response", detail="unexpected JSON")
    choices = data.get("choices")
    if "error" in data and not choices:
        raise UpstreamError("upstream_error", detail=detail_of(data, config.api_key))
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamError("bad_response", detail="no choices")
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
        usage=counts(usage),
    )


def counts(usage: dict) -> dict:
    """The token counts of a usage object that are whole numbers, and no other field."""
    return {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens") if _is_count(usage.get(k))}


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0

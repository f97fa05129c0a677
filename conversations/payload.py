"""Turn a stored conversation into the `messages` list of a chat completion request."""

from conversations import tokens
from conversations.models import Conversation, Message
from conversations.selectors import message_path
from providers import catalogue


def build_messages(conversation: Conversation, *, upto: Message | None) -> list[dict]:
    """System prompt first, then the branch from the root to `upto` (inclusive), in order.

    Only the branch is sent, never the alternatives beside it. Failed and unfinished replies
    are left out, and so are empty ones, which upstreams reject.
    """
    payload = []
    if conversation.system_prompt.strip():
        payload.append({"role": Message.Role.SYSTEM.value, "content": conversation.system_prompt})
    if upto is None:
        return payload
    for message in message_path(conversation, upto=upto.pk):
        if message.status in Message.USABLE and message.content:
            payload.append({"role": message.role, "content": message.content})
    return payload


# The reply's room when neither the chat nor the catalogue sets max_tokens: the upstream's
# default (the settings form says so too).
DEFAULT_REPLY_TOKENS = 512


class DoesNotFit(ValueError):
    """The system prompt and the newest message alone are larger than the model's window;
    `str(error)` is fit to show the person."""


def request_params(conversation: Conversation, *, model: str | None = None) -> dict:
    """The generation parameters sent: the catalogue's defaults for the model (the chat's
    unless another is named), then the chat's own."""
    return {**catalogue.model_default_params(model or conversation.model), **conversation.generation_params()}


def fit_window(messages: list[dict], *, model: str, params: dict) -> tuple[list[dict], int]:
    """The system prompt and the newest messages whose estimated tokens (conversations.tokens)
    leave the reply's max_tokens free in the model's context window; returns them and how
    many earlier messages were left out. The newest message is always kept: DoesNotFit when
    it cannot be.

    A model the catalogue does not list has no known window: everything is kept.
    """
    chat_model = catalogue.chat_catalogue().get(model)
    if chat_model is None:
        return messages, 0
    reply_tokens = params.get("max_tokens") or DEFAULT_REPLY_TOKENS
    system = [m for m in messages[:1] if m["role"] == Message.Role.SYSTEM]
    turns = messages[len(system) :]
    budget = chat_model.context_window - reply_tokens - tokens.estimate_messages(system)
    kept = 0
    for message in reversed(turns):
        cost = tokens.estimate_message(message)
        if cost > budget:
            break
        budget -= cost
        kept += 1
    if turns and kept == 0:
        raise DoesNotFit(
            f"This message is too long for {chat_model}: with the system prompt and {reply_tokens:,} tokens kept "
            f"for the reply, it does not fit the model's {chat_model.context_window:,}-token context window, "
            "so it was not sent. Shorten it, lower “Max tokens”, or choose a model with a larger window."
        )
    # The history sent starts with a person's message, as chat templates expect.
    while kept > 1 and turns[len(turns) - kept]["role"] != Message.Role.USER:
        kept -= 1
    return system + turns[len(turns) - kept :], len(turns) - kept

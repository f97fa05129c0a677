"""Export and import formats of a person's history (no database writes here; see services).

- `export_json`: chatsite's own format (docs/export-format.md); Markdown for reading is in `markdown_export`.
- `parse_import`: reads chatsite's JSON or ChatGPT's `conversations.json` into plain
  `ImportedConversation`s, validating everything first, so that `services.conversation_import`
  stores all of a file or nothing.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations.models import FOLDER_NAME_LENGTH, TITLE_LENGTH, Conversation, Message
from providers.params import PARAMETER_BOUNDS

FORMAT = "chatsite-export"
VERSION = 1
EXPORT_BATCH = 200  # conversations whose messages are read in one query
_ROLES = {choice for choice, _ in Message.Role.choices}
_STATUSES = {choice for choice, _ in Message.Status.choices}
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


class ImportError_(Exception):
    """A file that cannot be imported, with a message fit to show the person."""


@dataclass
class ImportedMessage:
    role: str
    content: str
    parent: int | None  # index of an earlier message of the same conversation
    status: str = Message.Status.COMPLETE
    model: str = ""
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: int | None = None
    first_token_ms: int | None = None
    error_code: str = ""
    error: str = ""
    created_at: datetime | None = None


@dataclass
class ImportedConversation:
    title: str
    model: str
    system_prompt: str = ""
    params: dict = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    pinned: bool = False
    archived: bool = False
    current: int | None = None  # index of the message the conversation shows
    messages: list[ImportedMessage] = field(default_factory=list)
    folder: str = ""  # a folder's name: found or created by the import


# --- Export ---------------------------------------------------------------------------


def time_text(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def conversation_data(conversation: Conversation, messages: list[Message]) -> dict:
    """One conversation in chatsite's JSON format; `messages` in id order (parents first)."""
    index_of = {message.pk: index for index, message in enumerate(messages)}
    return {
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "params": {name: getattr(conversation, name) for name in PARAMETER_BOUNDS},
        "created_at": time_text(conversation.created_at),
        "updated_at": time_text(conversation.updated_at),
        "pinned": conversation.pinned_at is not None,
        "archived": conversation.archived_at is not None,
        "folder": conversation.folder.name if conversation.folder_id else None,
        "current": index_of.get(conversation.current_message_id),
        "messages": [
            {
                "parent": index_of.get(message.parent_id),
                "role": message.role,
                "content": message.content,
                "status": message.status,
                "model": message.model,
                "finish_reason": message.finish_reason,
                "usage": {name: getattr(message, name) for name in _USAGE},
                "latency_ms": message.latency_ms,
                "first_token_ms": message.first_token_ms,
                "error_code": message.error_code,
                "error": message.error,
                "created_at": time_text(message.created_at),
            }
            for message in messages
        ],
    }


def with_messages(conversations: Iterable[Conversation]) -> Iterator[tuple[Conversation, list[Message]]]:
    """Each conversation with its messages, reading the messages of EXPORT_BATCH conversations at once."""
    batch: list[Conversation] = []

    def flush():
        by_conversation: dict[int, list[Message]] = {c.pk: [] for c in batch}
        rows = Message.objects.filter(conversation_id__in=list(by_conversation)).order_by("conversation_id", "id")
        for message in rows.defer("content_html"):
            by_conversation[message.conversation_id].append(message)
        for conversation in batch:
            yield conversation, by_conversation[conversation.pk]

    for conversation in conversations:
        batch.append(conversation)
        if len(batch) == EXPORT_BATCH:
            yield from flush()
            batch = []
    if batch:
        yield from flush()


def export_json(conversations: Iterable[Conversation]) -> Iterator[str]:
    """chatsite's JSON export, as pieces of text to stream (the whole history may be large)."""
    head = {"format": FORMAT, "version": VERSION, "exported_at": time_text(timezone.now())}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "conversations": ['
    for number, (conversation, messages) in enumerate(with_messages(conversations)):
        yield ("," if number else "") + "\n" + json.dumps(conversation_data(conversation, messages), ensure_ascii=False)
    yield "\n]}\n"


# --- Import ---------------------------------------------------------------------------


def parse_import(raw: bytes) -> list[ImportedConversation]:
    """The conversations of an uploaded file: chatsite's JSON export or ChatGPT's conversations.json."""
    try:
        return _parse_import(raw)
    except RecursionError:  # the JSON parser (and repr) recurse once per level of [ or {
        raise ImportError_(
            "This file nests lists or objects too deeply to be read; no export of chatsite or ChatGPT does."
        ) from None


def _parse_import(raw: bytes) -> list[ImportedConversation]:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ImportError_(f"This file is not valid JSON ({error}).") from None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        if data.get("version") != VERSION:
            raise ImportError_(f"This chatsite export has version {data.get('version')!r}; this site reads {VERSION}.")
        items = _expect(data.get("conversations"), list, "conversations")
        return [_chatsite_conversation(item, number) for number, item in enumerate(items, 1)]
    if isinstance(data, list) and all(isinstance(item, dict) and "mapping" in item for item in data):
        return [_chatgpt_conversation(item, number) for number, item in enumerate(data, 1)]
    raise ImportError_(
        "This file is neither a chatsite JSON export nor ChatGPT's conversations.json "
        "(from the ZIP file of a ChatGPT data export)."
    )


def _expect(value, kind, where: str):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {list: "a list", dict: "an object", str: "text", int: "a whole number", bool: "true or false"}
        raise ImportError_(f"{where}: expected {names.get(kind, kind.__name__)}.")
    return value


def _optional(value, kind, where: str):
    return None if value is None else _expect(value, kind, where)


def _datetime(value, where: str) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(_expect(value, str, where))
    if parsed is None or parsed.tzinfo is None:
        raise ImportError_(f"{where}: expected a date and time with a time zone, got {value!r}.")
    return parsed


def _text(value, where: str, *, limit: int | None = None) -> str:
    text = _expect(value if value is not None else "", str, where)
    if "\x00" in text:
        raise ImportError_(f"{where}: contains a NUL character.")
    if limit is not None and len(text) > limit:
        raise ImportError_(f"{where}: longer than {limit} characters.")
    return text


def _chatsite_conversation(item, number: int) -> ImportedConversation:
    where = f"Conversation {number}"
    _expect(item, dict, where)
    params = _expect(item.get("params") or {}, dict, f"{where}, params")
    for name, value in params.items():
        if name not in PARAMETER_BOUNDS:
            raise ImportError_(f"{where}, params: unknown parameter {name!r}.")
        if value is not None:
            low, high = PARAMETER_BOUNDS[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise ImportError_(f"{where}, params: {name} must be a number from {low} to {high}.")
    messages = []
    for index, raw in enumerate(_expect(item.get("messages", []), list, f"{where}, messages")):
        at = f"{where}, message {index + 1}"
        _expect(raw, dict, at)
        parent = _optional(raw.get("parent"), int, f"{at}, parent")
        if parent is not None and not 0 <= parent < index:
            raise ImportError_(f"{at}: parent must be the index of an earlier message.")
        role, status = raw.get("role"), raw.get("status", Message.Status.COMPLETE)
        if role not in _ROLES:
            raise ImportError_(f"{at}: role must be one of {', '.join(sorted(_ROLES))}.")
        if status not in _STATUSES:
            raise ImportError_(f"{at}: status must be one of {', '.join(sorted(_STATUSES))}.")
        if status in Message.IN_PROGRESS:
            status = Message.Status.INTERRUPTED  # nothing is writing it on this site
        usage = _expect(raw.get("usage") or {}, dict, f"{at}, usage")
        messages.append(
            ImportedMessage(
                role=role,
                content=_text(raw.get("content"), f"{at}, content"),
                parent=parent,
                status=status,
                model=_text(raw.get("model"), f"{at}, model", limit=200),
                finish_reason=_text(raw.get("finish_reason"), f"{at}, finish_reason", limit=32),
                **{name: _count(usage.get(name), f"{at}, usage.{name}") for name in _USAGE},
                latency_ms=_count(raw.get("latency_ms"), f"{at}, latency_ms"),
                first_token_ms=_count(raw.get("first_token_ms"), f"{at}, first_token_ms"),
                error_code=_text(raw.get("error_code"), f"{at}, error_code", limit=32),
                error=_text(raw.get("error"), f"{at}, error"),
                created_at=_datetime(raw.get("created_at"), f"{at}, created_at"),
            )
        )
    current = _optional(item.get("current"), int, f"{where}, current")
    if current is not None and not 0 <= current < len(messages):
        raise ImportError_(f"{where}: current must be the index of one of its messages.")
    return ImportedConversation(
        title=_text(item.get("title"), f"{where}, title", limit=TITLE_LENGTH),
        model=_text(item.get("model"), f"{where}, model", limit=200),
        system_prompt=_text(item.get("system_prompt"), f"{where}, system_prompt"),
        params={name: value for name, value in params.items() if value is not None},
        created_at=_datetime(item.get("created_at"), f"{where}, created_at"),
        updated_at=_datetime(item.get("updated_at"), f"{where}, updated_at"),
        pinned=bool(item.get("pinned")),
        archived=bool(item.get("archived")),
        current=current,
        messages=messages,
        folder=" ".join(_text(item.get("folder"), f"{where}, folder", limit=FOLDER_NAME_LENGTH).split()),
    )


def _count(value, where: str) -> int | None:
    number = _optional(value, int, where)
    if number is not None and number < 0:
        raise ImportError_(f"{where}: must not be negative.")
    return number


def _epoch(value, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImportError_(f"{where}: expected a time in seconds since 1970.")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ImportError_(f"{where}: {value!r} is not a usable time.") from None


def _chatgpt_conversation(item: dict, number: int) -> ImportedConversation:
    """ChatGPT's tree of nodes; the person's and the assistant's text messages are kept, branches too.

    System, tool and empty messages are left out: their children hang from the nearest
    message kept above them.
    """
    where = f"Conversation {number} ({str(item.get('title') or 'untitled')[:40]!r})"
    mapping = _expect(item.get("mapping"), dict, f"{where}, mapping")
    roots = [key for key, node in mapping.items() if not (isinstance(node, dict) and node.get("parent") in mapping)]
    if not roots:
        raise ImportError_(f"{where}: its messages form no tree (no first message).")
    messages: list[ImportedMessage] = []
    kept_index: dict[str, int | None] = {}
    stack: list[tuple[str, int | None]] = [(root, None) for root in reversed(roots)]
    model = ""
    while stack:
        key, parent_index = stack.pop()
        if key in kept_index:
            raise ImportError_(f"{where}: node {key!r} appears twice in the tree.")
        node = _expect(mapping.get(key), dict, f"{where}, node {key!r}")
        message = _chatgpt_message(node.get("message"), f"{where}, node {key!r}")
        if message is not None:
            message.parent = parent_index
            model = model or message.model
            messages.append(message)
            parent_index = len(messages) - 1
        kept_index[key] = parent_index
        children = _expect(node.get("children") or [], list, f"{where}, node {key!r}, children")
        for child in reversed(children):
            if child not in mapping:
                raise ImportError_(f"{where}, node {key!r}: child {child!r} is missing from the mapping.")
            stack.append((child, parent_index))
    current_node = item.get("current_node")
    current = kept_index.get(current_node) if isinstance(current_node, str) else None
    title = " ".join(_text(item.get("title"), f"{where}, title").split())
    if len(title) > TITLE_LENGTH:
        title = title[: TITLE_LENGTH - 1].rstrip() + "…"
    return ImportedConversation(
        title=title,
        model=model or "chatgpt",
        created_at=_epoch(item.get("create_time"), f"{where}, create_time"),
        updated_at=_epoch(item.get("update_time"), f"{where}, update_time"),
        current=current if current is not None else (len(messages) - 1 if messages else None),
        messages=messages,
    )


def _chatgpt_message(message, where: str) -> ImportedMessage | None:
    if message is None:
        return None
    _expect(message, dict, f"{where}, message")
    author = _expect(message.get("author") or {}, dict, f"{where}, author")
    role = author.get("role")
    if role not in ("user", "assistant"):
        return None
    content = _expect(message.get("content") or {}, dict, f"{where}, content")
    parts = _expect(content.get("parts") or [], list, f"{where}, content.parts")
    # Text parts only: images and files are objects, which this site cannot show.
    text = "\n\n".join(part for part in parts if isinstance(part, str) and part.strip())
    if "\x00" in text:
        raise ImportError_(f"{where}: contains a NUL character.")
    if not text.strip():
        return None
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    slug = metadata.get("model_slug") if isinstance(metadata.get("model_slug"), str) else ""
    return ImportedMessage(
        role=role,
        content=text,
        parent=None,
        model=slug[:200] if role == "assistant" else "",
        created_at=_epoch(message.get("create_time"), f"{where}, create_time"),
    )

"""Reads of the conversations domain."""

from collections import defaultdict

from django.conf import settings

from conversations.models import ChatModel, Conversation, Message

SIDEBAR_LIMIT = 50


def sidebar_conversations(owner, *, query: str = "") -> list[Conversation]:
    """The owner's most recently active conversations, newest first; `query` filters the titles."""
    conversations = Conversation.objects.filter(owner=owner)
    if query:
        conversations = conversations.filter(title__icontains=query)
    return list(conversations.only("id", "title", "updated_at")[:SIDEBAR_LIMIT])


class _Tree:
    """The shape of a conversation's message tree: parent and children of each message id."""

    def __init__(self, conversation: Conversation):
        rows = Message.objects.filter(conversation=conversation).order_by("id").values_list("id", "parent_id")
        self.parent_of: dict[int, int | None] = {}
        self.children_of: dict[int | None, list[int]] = defaultdict(list)
        for message_id, parent_id in rows:
            self.parent_of[message_id] = parent_id
            self.children_of[parent_id].append(message_id)

    def path_to(self, message_id: int) -> list[int]:
        path = []
        node = message_id
        while node is not None:
            path.append(node)
            node = self.parent_of[node]
        return path[::-1]

    def latest_leaf_under(self, message_id: int) -> int:
        """Follow the newest child down: where the person lands when they switch to this message."""
        node = message_id
        while self.children_of.get(node):
            node = self.children_of[node][-1]
        return node


def message_path(conversation: Conversation, *, upto: int | None = None) -> list[Message]:
    """The messages from the root to `upto` (default: the conversation's current message), in order.

    Each message carries `sibling_ids` (itself and its alternatives, oldest first),
    `sibling_index` (1-based) and `previous_sibling_id` / `next_sibling_id`, for the "2/3" arrows.
    """
    tree = _Tree(conversation)
    if not tree.parent_of:
        return []
    leaf = upto if upto in tree.parent_of else conversation.current_message_id
    if leaf not in tree.parent_of:
        leaf = tree.latest_leaf_under(tree.children_of[None][-1])
    ids = tree.path_to(leaf)
    messages = Message.objects.in_bulk(ids)
    path = [messages[message_id] for message_id in ids]
    for message in path:
        _set_siblings(message, tree.children_of[message.parent_id])
    return path


def with_siblings(message: Message) -> Message:
    """The message, with its `sibling_ids` and `sibling_index` set (see `message_path`)."""
    siblings = Message.objects.filter(conversation_id=message.conversation_id, parent_id=message.parent_id)
    _set_siblings(message, list(siblings.order_by("id").values_list("id", flat=True)))
    return message


def latest_leaf_under(conversation: Conversation, message_id: int) -> int:
    return _Tree(conversation).latest_leaf_under(message_id)


def _set_siblings(message: Message, sibling_ids: list[int]) -> None:
    index = sibling_ids.index(message.pk)
    message.sibling_ids = sibling_ids
    message.sibling_index = index + 1
    message.previous_sibling_id = sibling_ids[index - 1] if index > 0 else None
    message.next_sibling_id = sibling_ids[index + 1] if index + 1 < len(sibling_ids) else None


def enabled_chat_models() -> list[ChatModel]:
    """The models a person may choose, as the chat page offers them."""
    return list(ChatModel.objects.filter(enabled=True))


def default_model_id() -> str:
    """The model of a new chat: AIMLAPI_MODEL unless the catalogue turned it off, else the first enabled one."""
    catalogue = {model.model_id: model for model in ChatModel.objects.all()}
    configured = catalogue.get(settings.AIMLAPI_MODEL)
    if configured is None or configured.enabled:
        return settings.AIMLAPI_MODEL
    enabled = [model for model in catalogue.values() if model.enabled]
    return min(enabled, key=lambda model: (model.display_name, model.model_id)).model_id if enabled else ""


def model_default_params(model_id: str) -> dict:
    """The catalogue's default generation parameters for a model (empty when it has none)."""
    chat_model = ChatModel.objects.filter(model_id=model_id).only("default_params").first()
    return dict(chat_model.default_params) if chat_model and isinstance(chat_model.default_params, dict) else {}


def model_is_turned_off(model_id: str) -> bool:
    """True when the catalogue lists the model as disabled (models it does not list are not refused)."""
    return ChatModel.objects.filter(model_id=model_id, enabled=False).exists()

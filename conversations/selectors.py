"""Reads of the conversations domain: the message tree and its windows, the shared page, and the
chat page (`chat_page`); the sidebar's reads are in `sidebar.py`."""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from conversations.models import Conversation, Message, ShareLink, title_from
from conversations.sidebar import SidebarList
from conversations.title_watch import TITLE_AWAITED, title_state
from providers import catalogue

MESSAGE_PAGE = 100


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

    def is_ancestor(self, message_id: int, of: int | None) -> bool:
        """Whether `message_id` is on the path from the root to `of`."""
        node = of
        while node is not None and node in self.parent_of:
            if node == message_id:
                return True
            node = self.parent_of[node]
        return False

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
    return message_window(conversation, upto=upto, size=None).messages


@dataclass
class MessageWindow:
    messages: list[Message]
    leaf_id: int | None = None  # the end of the branch shown
    older_than: int | None = None  # the first message shown, when older ones exist
    has_newer: bool = False
    branch_ids: list[int] = field(default_factory=list)  # the whole branch, root first, shown or not


def message_window(
    conversation: Conversation,
    *,
    upto: int | None = None,
    before: int | None = None,
    around: int | None = None,
    size: int | None = MESSAGE_PAGE,
) -> MessageWindow:
    """A slice of the branch ending at `upto` (default: the current message), as `message_path`.

    By default the newest `size` messages; with `before`, the `size` messages before that
    one; with `around`, the branch through that message and the messages around it. The
    branch's shape comes from one query of (id, parent_id) pairs; only the messages shown
    are read in full, so a page costs the same few queries however long the conversation.
    """
    tree = _Tree(conversation)
    if not tree.parent_of:
        return MessageWindow(messages=[])
    leaf = upto if upto in tree.parent_of else conversation.current_message_id
    if leaf not in tree.parent_of:
        leaf = tree.latest_leaf_under(tree.children_of[None][-1])
    if around in tree.parent_of and not tree.is_ancestor(around, leaf):
        leaf = tree.latest_leaf_under(around)  # a message on another branch: show that branch
    ids = tree.path_to(leaf)
    end = len(ids)
    if size is not None:
        if before in tree.parent_of and before in ids:
            end = ids.index(before)
        elif around in tree.parent_of and around in ids:
            end = min(len(ids), ids.index(around) + size // 2)
    start = 0 if size is None else max(0, end - size)
    shown = ids[start:end]
    messages = Message.objects.in_bulk(shown)
    path = [messages[message_id] for message_id in shown]
    for message in path:
        _set_siblings(message, tree.children_of[message.parent_id])
    return MessageWindow(
        messages=path,
        leaf_id=leaf,
        older_than=shown[0] if start > 0 else None,
        has_newer=end < len(ids),
        branch_ids=ids,
    )


@dataclass
class SharedPage:
    title: str
    messages: list[Message]
    models: list[str]  # the models that answered on the branch


def shared_page(conversation: Conversation) -> SharedPage:
    """What a share link shows: the current branch, and nothing taken from a message off it."""
    window = message_window(conversation, size=None)
    replies = [message.model for message in window.messages if message.role == Message.Role.ASSISTANT]
    models = list(dict.fromkeys(model for model in replies if model)) or [conversation.model]
    return SharedPage(title=public_title(conversation, window), messages=window.messages, models=models)


def public_title(
    conversation: Conversation, window: MessageWindow | None = None, *, shown: Iterable[Message] = ()
) -> str:
    """The title a share link shows (and its dialog announces): the owner's own title, or an
    automatic one while what it was made from is on the current branch; otherwise the title
    the branch's first question gives (after an Edit replaced the original one).

    `shown`: messages known to be on the current branch; when the title's source is one of
    them, the branch is not read."""
    source = conversation.title_source_id
    if conversation.title and (source is None or source in {message.pk for message in shown}):
        return conversation.title
    if window is None:
        window = message_window(conversation, size=1)
    branch = window.branch_ids
    if conversation.title and source in branch:
        return conversation.title
    if not branch:
        return conversation.display_title
    in_window = {message.pk: message for message in window.messages}
    root = in_window.get(branch[0]) or Message.objects.only("role", "content").get(pk=branch[0])
    return title_from(root.content) if root.role == Message.Role.USER and root.content else "New chat"


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


@dataclass
class ChatPage:
    """What the chat page reads: the sidebar, and the open conversation's messages and share link."""

    sidebar: SidebarList
    default_model: str  # named in an empty conversation and used by a new one
    conversation: Conversation | None = None
    messages: list[Message] = field(default_factory=list)
    turn: Sequence[Message] = ()  # a turn just sent, shown after `messages`
    window: MessageWindow | None = None
    share_link: ShareLink | None = None
    undo: Conversation | None = None  # just deleted, offered back
    models: list = field(default_factory=list)  # the catalogue's models a person may choose, named when empty

    @property
    def parent_id(self) -> int | None:
        """The message the composer's next one answers: the end of the branch shown.

        A window may not include that end, so it is the window's leaf when one was read."""
        if self.window is not None and self.window.leaf_id is not None:
            return self.window.leaf_id
        last = self.messages[-1:] or self.turn[-1:]
        return last[0].pk if last else None

    def public_title(self) -> str:
        """The share panel's title, read only where the panel is rendered."""
        return public_title(self.conversation, self.window, shown=[*self.messages, *self.turn])

    @property
    def awaits_title(self) -> bool:
        """Whether a model-made title may still come (the page then asks for it), from the messages shown."""
        shown = [*self.messages, *self.turn]
        if self.conversation is None or not shown or shown[0].parent_id is not None:
            return False
        reply = shown[1] if len(shown) == 2 else None
        return reply is not None and title_state(self.conversation, question=shown[0], reply=reply) == TITLE_AWAITED


def chat_page(
    owner,
    conversation: Conversation | None = None,
    *,
    sidebar: SidebarList,
    messages: list[Message] | None = None,
    turn: Sequence[Message] = (),
    around: int | None = None,
    undo: int | None = None,
) -> ChatPage:
    """The chat page of `owner`, with `conversation` open (none: a new chat) beside `sidebar`.

    The messages shown are a window of the current branch (through `around` when given),
    unless the caller holds them: `messages` (a new conversation's first turn), or `turn`
    (a turn just sent, added after the messages the browser already shows).
    """
    page = ChatPage(
        sidebar=sidebar,
        default_model=catalogue.default_model_id(owner),
        conversation=conversation,
        turn=turn,
        models=catalogue.enabled_chat_models(owner),
    )
    if undo is not None:
        trash = Conversation.objects.filter(owner=owner, deleted_at__isnull=False, import_batch__isnull=True)
        page.undo = trash.filter(pk=undo).first()
    if conversation is None:
        return page
    if messages is None and not turn:
        page.window = message_window(conversation, around=around)
        page.messages = page.window.messages
        # Not read for a turn just sent (its response shows no share panel), nor for a new
        # conversation's first turn (it has no link yet).
        page.share_link = conversation.share_links.filter(revoked_at__isnull=True).first()
    else:
        page.messages = messages or []
    return page

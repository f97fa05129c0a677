"""What the views share: the templates, loading through the owner, and rendering the chat page."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.functional import SimpleLazyObject

from conversations.folders import folder_choices
from conversations.forms import ConversationModelForm, ConversationSettingsForm, MessageForm
from conversations.models import Conversation, Folder, Message
from conversations.selectors import ChatPage
from conversations.sidebar import SidebarList, SidebarPage, sidebar_list

PAGE = "conversations/chat.html"
SIDEBAR = "conversations/_sidebar.html"
MESSAGE = "conversations/_message.html"
COMPOSER = "conversations/_composer.html"
SETTINGS = "conversations/_settings.html"
HEADER = "conversations/_header.html"


def owned_conversation(request: HttpRequest, pk: int) -> Conversation:
    """The signed-in person's conversation (not one in the trash), or 404."""
    conversation = get_object_or_404(Conversation, pk=pk, owner=request.user, deleted_at__isnull=True)
    conversation.owner = request.user  # already read by the middleware: the checks need not read it again
    return conversation


def owned_message(request: HttpRequest, pk: int, message_pk: int, **filters) -> tuple[Conversation, Message]:
    """A message of the signed-in person's conversation `pk` (not in the trash), read with it in one query, or 404."""
    message = get_object_or_404(
        Message.objects.select_related("conversation"),
        pk=message_pk,
        conversation_id=pk,
        conversation__owner=request.user,
        conversation__deleted_at__isnull=True,
        **filters,
    )
    message.conversation.owner = request.user  # already read by the middleware
    return message.conversation, message


def owned_folder(request: HttpRequest, pk) -> Folder:
    """The signed-in person's folder, or 404."""
    return get_object_or_404(Folder, pk=int_or_none(pk) or 0, owner=request.user)


def requested_folder(request: HttpRequest) -> Folder | None:
    """The folder `?folder=` names (a page or a search limited to it), or None; 404 for another's."""
    value = request.GET.get("folder", "")
    return owned_folder(request, value) if value else None


def requested_sidebar(request: HttpRequest) -> SidebarList:
    """The sidebar the URL asks for: results for `?q=`, else a page of conversations (`?archived=1`,
    `?folder=`, `?after=`)."""
    return sidebar_list(
        request.user,
        query=request.GET.get("q", "").strip(),
        archived=request.GET.get("archived") == "1",
        cursor=request.GET.get("after", ""),
        folder=requested_folder(request),
    )


def sidebar_context(sidebar: SidebarList) -> dict:
    return {
        "query": sidebar.query,
        "hits": sidebar.hits,
        "sidebar": sidebar.page,
        "archived": sidebar.archived,
        "folder": sidebar.folder,
        "sidebar_unchanged": sidebar.unchanged,
        "sidebar_row": sidebar.row,
        "sidebar_row_before": sidebar.row_before,
    }


def folders_of(request: HttpRequest, page: SidebarPage | None = None):
    """The person's folders for "Move to folder" menus: the sidebar's when it read them, else read when a
    menu is rendered (a callable, which the template calls)."""
    if page is not None and page.folders is not None:
        return page.folders
    return lambda: folder_choices(request.user)


def render_chat(
    request: HttpRequest,
    template: str,
    page: ChatPage,
    *,
    status: int = 200,
    settings_open: bool = False,
    actions_later: bool = False,
    **forms,
) -> HttpResponse:
    """The chat page, or one of its partials, from what `chat_page` read; `forms` replace the empty ones.

    `settings_open`: the header's Settings panel is rendered open with its form in it (otherwise the
    form loads when the panel is opened, and a new chat's composer holds the settings' fields).
    `actions_later`: the header's ⋯ menu loads its actions when opened (htmx only: a page holds them)."""
    conversation = page.conversation
    context = {
        "conversation": page.conversation,
        "messages_list": page.messages,
        "turn": page.turn,
        "window": page.window,
        "share_link": page.share_link,
        "public_title": page.public_title,  # a callable: read only where the share panel is rendered
        "default_model": page.default_model,
        "undo": page.undo,
        "folder_choices": folders_of(request, page.sidebar.page),
        "temporary_hours": settings.TEMPORARY_CHAT_HOURS,
        "message_form": MessageForm(initial={"parent": page.parent_id}),
        "settings_open": settings_open,
        "actions_later": actions_later,
        "settings_form": (
            ConversationSettingsForm(instance=conversation, prefix="settings", user=request.user)
            if conversation is None or settings_open
            else None
        ),
        # Built when the header's picker is rendered: a sent turn's response has no header.
        "model_form": (
            SimpleLazyObject(lambda: ConversationModelForm(instance=conversation, prefix="header", user=request.user))
            if conversation
            else None
        ),
        "models": page.models,
        "awaits_title": page.awaits_title,
        **sidebar_context(page.sidebar),
        **forms,
    }
    return render(request, template, context, status=status)


def int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

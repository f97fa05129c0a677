"""What the views share: the templates, loading through the owner, and rendering the chat page."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from conversations.forms import ConversationSettingsForm, MessageForm
from conversations.models import Conversation, Message
from conversations.selectors import ChatPage, SidebarList, sidebar_list

PAGE = "conversations/chat.html"
SIDEBAR = "conversations/_sidebar.html"
MESSAGE = "conversations/_message.html"
COMPOSER = "conversations/_composer.html"
SETTINGS = "conversations/_settings.html"


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


def requested_sidebar(request: HttpRequest) -> SidebarList:
    """The sidebar the URL asks for: results for `?q=`, else a page of conversations (`?archived=1`, `?after=`)."""
    return sidebar_list(
        request.user,
        query=request.GET.get("q", "").strip(),
        archived=request.GET.get("archived") == "1",
        cursor=request.GET.get("after", ""),
    )


def sidebar_context(sidebar: SidebarList) -> dict:
    return {
        "query": sidebar.query,
        "hits": sidebar.hits,
        "sidebar": sidebar.page,
        "archived": sidebar.archived,
        "sidebar_unchanged": sidebar.unchanged,
        "sidebar_row": sidebar.row,
        "sidebar_row_before": sidebar.row_before,
    }


def render_chat(request: HttpRequest, template: str, page: ChatPage, *, status: int = 200, **forms) -> HttpResponse:
    """The chat page, or one of its partials, from what `chat_page` read; `forms` replace the empty ones."""
    context = {
        "conversation": page.conversation,
        "messages_list": page.messages,
        "turn": page.turn,
        "window": page.window,
        "share_link": page.share_link,
        "public_title": page.public_title,  # a callable: read only where the share panel is rendered
        "default_model": page.default_model,
        "undo": page.undo,
        "message_form": MessageForm(initial={"parent": page.parent_id}),
        "settings_form": ConversationSettingsForm(instance=page.conversation, prefix="settings"),
        **sidebar_context(page.sidebar),
        **forms,
    }
    return render(request, template, context, status=status)


def int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

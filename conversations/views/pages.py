"""The chat page, and the parts of it that load on their own: the sidebar's list and older messages."""

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from conversations import services
from conversations.selectors import chat_page, message_window
from conversations.sidebar import sidebar_page
from conversations.title_watch import TITLE_AWAITED, title_state
from conversations.views._shared import (
    HEADER,
    MESSAGE,
    PAGE,
    SIDEBAR,
    int_or_none,
    owned_conversation,
    render_chat,
    requested_folder,
    requested_sidebar,
    sidebar_context,
)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    undo = int_or_none(request.GET.get("undo"))
    sidebar = requested_sidebar(request)  # first: a bad ?folder= is a 404 that changes nothing
    services.temporary_chats_leave(owner=request.user)  # a new chat: the person left any temporary one
    return render_chat(request, PAGE, chat_page(request.user, sidebar=sidebar, undo=undo))


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
    around = int_or_none(request.GET.get("m"))
    sidebar = requested_sidebar(request)
    # Opening another chat leaves a temporary one; a reload of the temporary chat itself keeps it.
    services.temporary_chats_leave(owner=request.user, staying=conversation)
    page = chat_page(request.user, conversation, sidebar=sidebar, around=around)
    return render_chat(request, PAGE, page)


@require_GET
def sidebar(request: HttpRequest) -> HttpResponse:
    """The sidebar's list for htmx: search results (`?q=`), or the page after `?cursor=` ("load more")."""
    if not request.htmx:
        params = {key: request.GET[key] for key in ("q", "archived", "folder") if request.GET.get(key)}
        if request.GET.get("cursor"):
            params["after"] = request.GET["cursor"]
        return redirect(reverse("conversations:index") + (f"?{urlencode(params)}" if params else ""))
    cursor = request.GET.get("cursor", "")
    if cursor and not request.GET.get("q"):
        archived = request.GET.get("archived") == "1"
        group = request.GET.get("group", "")
        folder = requested_folder(request)
        page = sidebar_page(request.user, cursor=cursor, after_group=group, archived=archived, folder=folder)
        return render(request, f"{SIDEBAR}#sidebar-page", {"sidebar": page, "archived": archived})
    return render(request, f"{SIDEBAR}#sidebar", sidebar_context(requested_sidebar(request)))


@require_GET
def messages_older(request: HttpRequest, pk: int) -> HttpResponse:
    """The messages before `?before=` on the branch ending at `?leaf=`: scrolling up a long conversation."""
    conversation = owned_conversation(request, pk)
    before = int_or_none(request.GET.get("before"))
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}?m={before}#message-{before}")
    window = message_window(conversation, upto=int_or_none(request.GET.get("leaf")), before=before)
    context = {"conversation": conversation, "messages_list": window.messages, "window": window}
    return render(request, f"{MESSAGE}#older-messages", context)


# htmx stops polling on this status (and still swaps what comes with it).
STOP_POLLING = 286


@require_GET
def conversation_title(request: HttpRequest, pk: int) -> HttpResponse:
    """The header's title and the sidebar's row, asked by the page every second while a model-made title
    may come: 204 (nothing to swap) until it is there or will not come, then 286, which ends the asking."""
    conversation = owned_conversation(request, pk)
    if not request.htmx:
        return redirect(conversation)
    if title_state(conversation) == TITLE_AWAITED:
        return HttpResponse(status=204)
    return render(request, f"{HEADER}#title-made", {"conversation": conversation}, status=STOP_POLLING)

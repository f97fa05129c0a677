"""HTTP views: parse input, call one service, render a page or (for htmx) a fragment."""

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url, reswap, retarget

from common import counters
from common.errors import error_response
from common.security import safe_next
from conversations import generation, history, selectors, services
from conversations.forms import ConversationSettingsForm, EditForm, ImportForm, MessageForm, RenameForm
from conversations.models import Conversation, Message, ShareLink
from conversations.search import search_messages
from conversations.selectors import message_window, sidebar_page, with_siblings
from providers import catalogue

PAGE = "conversations/chat.html"
SIDEBAR = "conversations/_sidebar.html"
MESSAGE = "conversations/_message.html"
COMPOSER = "conversations/_composer.html"
SETTINGS = "conversations/_settings.html"
HISTORY_PAGE = "conversations/history.html"
SHARED_PAGE = "conversations/shared.html"


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    """The signed-in person's conversation (not one in the trash), or 404."""
    return get_object_or_404(Conversation, pk=pk, owner=request.user, deleted_at__isnull=True)


def _message(request: HttpRequest, pk: int, message_pk: int, **filters) -> tuple[Conversation, Message]:
    conversation = _conversation(request, pk)
    return conversation, get_object_or_404(Message, pk=message_pk, conversation=conversation, **filters)


def _page(request: HttpRequest, template: str, *, conversation=None, status=200, **context) -> HttpResponse:
    if conversation is not None:
        if "messages_list" not in context:
            window = message_window(conversation, around=_int(request.GET.get("m")))
            context.update(messages_list=window.messages, window=window)
        # Replies continue the branch shown, from its end (which a window may not include).
        window = context.get("window")
        last_id = window.leaf_id if window else None
        if last_id is None:
            last = context["messages_list"][-1:] or context.get("turn", [])[-1:]
            last_id = last[0].pk if last else None
        context.setdefault("message_form", MessageForm(initial={"parent": last_id}))
        context.setdefault("settings_form", ConversationSettingsForm(instance=conversation, prefix="settings"))
        context.setdefault("share_link", conversation.share_links.filter(revoked_at__isnull=True).first())
        # Read only where the share panel is rendered (a template calls a callable).
        shown = [*context["messages_list"], *context.get("turn", [])]
        context.setdefault(
            "public_title", lambda: selectors.public_title(conversation, context.get("window"), shown=shown)
        )
    else:
        context.setdefault("settings_form", ConversationSettingsForm(prefix="settings"))
    context.setdefault("message_form", MessageForm())
    context.update(conversation=conversation, default_model=catalogue.default_model_id(), **_sidebar_context(request))
    return render(request, template, context, status=status)


def _sidebar_context(request: HttpRequest) -> dict:
    """The sidebar's list: search results for `?q=`, else a page of conversations (`?archived=1`, `?after=`)."""
    query = request.GET.get("q", "").strip()
    archived = request.GET.get("archived") == "1"
    if query:
        return {"query": query, "hits": search_messages(request.user, query), "sidebar": None, "archived": archived}
    page = sidebar_page(request.user, cursor=request.GET.get("after", ""), archived=archived)
    return {"query": "", "sidebar": page, "archived": archived}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    undo_pk = _int(request.GET.get("undo"))
    undo = None
    if undo_pk is not None:
        trash = Conversation.objects.filter(owner=request.user, deleted_at__isnull=False, import_batch__isnull=True)
        undo = trash.filter(pk=undo_pk).first()
    return _page(request, PAGE, undo=undo)


@require_GET
def sidebar(request: HttpRequest) -> HttpResponse:
    """The sidebar's list for htmx: search results (`?q=`), or the page after `?cursor=` ("load more")."""
    if not request.htmx:
        params = {key: request.GET[key] for key in ("q", "archived") if request.GET.get(key)}
        if request.GET.get("cursor"):
            params["after"] = request.GET["cursor"]
        return redirect(reverse("conversations:index") + (f"?{urlencode(params)}" if params else ""))
    cursor = request.GET.get("cursor", "")
    if cursor and not request.GET.get("q"):
        archived = request.GET.get("archived") == "1"
        page = sidebar_page(request.user, cursor=cursor, after_group=request.GET.get("group", ""), archived=archived)
        return render(request, f"{SIDEBAR}#sidebar-page", {"sidebar": page, "archived": archived})
    return render(request, f"{SIDEBAR}#sidebar", _sidebar_context(request))


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, PAGE, conversation=_conversation(request, pk))


@require_GET
def messages_older(request: HttpRequest, pk: int) -> HttpResponse:
    """The messages before `?before=` on the branch ending at `?leaf=`: scrolling up a long conversation."""
    conversation = _conversation(request, pk)
    before = _int(request.GET.get("before"))
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}?m={before}#message-{before}")
    window = message_window(conversation, upto=_int(request.GET.get("leaf")), before=before)
    context = {"conversation": conversation, "messages_list": window.messages, "window": window}
    return render(request, f"{PAGE}#older-messages", context)


# --- History: rename, pin, archive, delete and undo ------------------------------------


def _sidebar_response(request: HttpRequest, *, status: int = 200, **context) -> HttpResponse:
    """The sidebar's first page, after a change to the list (rename, pin, archive, delete, restore)."""
    archived = request.POST.get("archived_view") == "1"
    page = sidebar_page(request.user, archived=archived)
    context = {"sidebar": page, "query": "", "archived": archived, **context}
    return render(request, f"{SIDEBAR}#sidebar", context, status=status)


def _history_change(request: HttpRequest, conversation: Conversation, **context) -> HttpResponse:
    if not request.htmx:
        return redirect(safe_next(request, conversation.get_absolute_url()))
    return _sidebar_response(request, conversation=_current(request), **context)


def _current(request: HttpRequest) -> Conversation | None:
    """The conversation the person has open, for the sidebar's highlight (from htmx's HX-Current-URL)."""
    path = request.htmx.current_url_abs_path if request.htmx else None
    if path and path.startswith("/c/"):
        return Conversation(pk=_int(path.split("/")[2]))
    return None


@require_GET
def conversation_manage(request: HttpRequest, pk: int) -> HttpResponse:
    """A sidebar item with its actions open (loaded on demand: the list itself stays small)."""
    conversation = _conversation(request, pk)
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#actions")
    context = {"item": conversation, "open_menu": conversation.pk, "conversation": _current(request)}
    return render(request, f"{SIDEBAR}#conversation-item", context)


@require_POST
def conversation_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    form = RenameForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
        except services.ChatError as refused:
            error = str(refused)
    else:
        error = form.errors["title"][0]
    if not request.htmx:
        if error:
            return HttpResponse(error, status=422, content_type="text/plain")
        return redirect(conversation)
    current = _current(request)
    extra = {"open_menu": conversation.pk, "rename_error": error} if error else {}
    response = _sidebar_response(request, conversation=current, status=422 if error else 200, **extra)
    if not error and current is not None and current.pk == conversation.pk:
        # The open conversation's heading shows the new title too.
        response.content += render_to_string(f"{PAGE}#chat-title", {"conversation": conversation, "oob": True}).encode()
    return response


@require_POST
def conversation_pin(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    services.conversation_pin(conversation=conversation, pinned=request.POST.get("pinned") == "1")
    return _history_change(request, conversation)


@require_POST
def conversation_archive(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    services.conversation_archive(conversation=conversation, archived=request.POST.get("archived") == "1")
    return _history_change(request, conversation)


@require_POST
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    services.conversation_delete(conversation=conversation)
    undo_url = f"{reverse('conversations:index')}?{urlencode({'undo': conversation.pk})}"
    current = _current(request)
    if not request.htmx:
        return redirect(undo_url)
    if current is not None and current.pk == conversation.pk:
        return HttpResponseClientRedirect(undo_url)  # the open conversation is gone: leave it
    return _sidebar_response(request, conversation=current, undo=conversation)


@require_POST
def conversation_restore(request: HttpRequest, pk: int) -> HttpResponse:
    # Not a conversation an import is still staging: those appear when the whole file is stored.
    conversation = get_object_or_404(
        Conversation, pk=pk, owner=request.user, deleted_at__isnull=False, import_batch__isnull=True
    )
    services.conversation_restore(conversation=conversation)
    if not request.htmx:
        return redirect(conversation)
    return _sidebar_response(request, conversation=_current(request))


# --- Export and import ------------------------------------------------------------------

_EXPORT_TYPES = {"json": "application/json", "md": "text/markdown; charset=utf-8"}


def _export(conversations, fmt: str, filename: str) -> StreamingHttpResponse:
    pieces = history.export_json(conversations) if fmt == "json" else history.export_markdown(conversations)
    response = StreamingHttpResponse((piece.encode() for piece in pieces), content_type=_EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def conversation_export(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    conversation = _conversation(request, pk)
    if fmt not in _EXPORT_TYPES:
        raise Http404
    return _export([conversation], fmt, f"chatsite-conversation-{conversation.pk}")


@require_GET
def export_all(request: HttpRequest, fmt: str) -> StreamingHttpResponse:
    if fmt not in _EXPORT_TYPES:
        raise Http404
    conversations = Conversation.objects.filter(owner=request.user, deleted_at__isnull=True).order_by(
        "-updated_at", "-id"
    )
    return _export(conversations.iterator(chunk_size=history.EXPORT_BATCH), fmt, "chatsite-history")


@require_http_methods(["GET", "POST"])
def history_page(request: HttpRequest) -> HttpResponse:
    """Export everything, import a file, and the way to the archive."""
    form = ImportForm()
    imported, status = None, 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            limit = settings.CHAT_IMPORT_MAX_BYTES
            try:
                if upload.size > limit:
                    raise services.ChatError(
                        f"Nothing was imported: this file is {upload.size:,} bytes and the limit is {limit:,} bytes."
                    )
                imported = services.conversation_import(owner=request.user, raw=upload.read())
            except services.ChatError as error:
                form.add_error("file", str(error))
        if form.errors:
            status = 422
    context = {"import_form": form, "imported": imported, "max_bytes": settings.CHAT_IMPORT_MAX_BYTES}
    return render(request, HISTORY_PAGE, context, status=status)


# --- Share links ----------------------------------------------------------------------


@require_POST
def share_create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    link = services.share_create(conversation=conversation)
    return _share_response(request, conversation, link)


@require_POST
def share_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    services.share_revoke(conversation=conversation)
    return _share_response(request, conversation, None)


def _share_response(request: HttpRequest, conversation: Conversation, link: ShareLink | None) -> HttpResponse:
    if not request.htmx:
        return redirect(conversation)
    context = {"conversation": conversation, "share_link": link, "public_title": selectors.public_title(conversation)}
    return render(request, f"{PAGE}#share-panel", context)


@login_not_required
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """The public, read-only page of a share link: one conversation's current branch and nothing else."""
    link = (
        ShareLink.objects.select_related("conversation")
        .filter(token=token, revoked_at__isnull=True, conversation__deleted_at__isnull=True)
        .first()
    )
    if link is None:
        # Most visitors of a share link have no account here: tell them why, with no way into the app.
        return error_response(
            request, 404, "This shared link was revoked, or it never existed. Ask whoever sent it for a new one."
        )
    conversation = link.conversation
    shared = selectors.shared_page(conversation)
    context = {"conversation": conversation, "shared": shared, "messages_list": shared.messages}
    response = render(request, SHARED_PAGE, context)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of other sites' logs
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def conversation_create(request: HttpRequest) -> HttpResponse:
    form = MessageForm(request.POST)
    settings_form = ConversationSettingsForm(request.POST, prefix="settings")
    if not (form.is_valid() and settings_form.is_valid()):
        return _invalid_composer(request, form, settings_form=settings_form)
    try:
        chat_settings = dict(settings_form.cleaned_data)
        user_message, assistant_message, _ = services.conversation_start(
            owner=request.user,
            content=form.cleaned_data["content"],
            client_id=form.cleaned_data["client_id"],
            model=chat_settings.pop("model"),
            settings=chat_settings,
        )
    except services.ChatError as error:
        form.add_error("content", str(error))
        return _invalid_composer(request, form, settings_form=settings_form, status=_refusal_status(error))
    conversation = user_message.conversation
    if not request.htmx:
        return redirect(conversation)
    # A new conversation holds just this turn: no need to read its tree back.
    turn = [message for message in (user_message, assistant_message) if message is not None]
    response = _page(request, f"{PAGE}#chat-pane-response", conversation=conversation, messages_list=turn)
    response = retarget(response, "#chat-pane")
    response = reswap(response, "outerHTML")
    return push_url(response, conversation.get_absolute_url())


@require_POST
def message_create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _invalid_composer(request, form, conversation=conversation)
    try:
        user_message, assistant_message, created = services.message_send(
            conversation=conversation,
            content=form.cleaned_data["content"],
            client_id=form.cleaned_data["client_id"],
            parent_id=form.cleaned_data["parent"],
        )
    except services.ChatError as error:
        form.add_error("content", str(error))
        return _invalid_composer(request, form, conversation=conversation, status=_refusal_status(error))
    if not request.htmx:
        return redirect(conversation)
    if not created:
        # A repeated submit: the first request already shows this turn.
        return reswap(HttpResponse(status=200), "none")
    return _page(
        request,
        f"{PAGE}#turn-response",
        conversation=conversation,
        turn=[user_message, assistant_message],
        messages_list=[],
    )


@require_GET
def message_stream(request: HttpRequest, pk: int, message_pk: int) -> StreamingHttpResponse:
    """Server-sent events of a reply: its text from an offset on, then the finished message.

    `text` events carry new text (a JSON string) with the text's length so far as their id,
    so a reconnect (Last-Event-ID, or `?offset=`) resumes without repeating anything. `waiting`
    events say how long the reply waits before another attempt ("" once it goes on). The
    `done` event carries the message's final HTML. Following a reply never starts one: any
    number of tabs and reconnects read the same generation, up to the caps of open streams
    per person and per reply (429 with the reason past them).
    """
    conversation, message = _message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    try:
        slots = generation.stream_slots(user_id=request.user.pk, message_id=message.pk)
    except generation.TooManyStreams as error:
        return error_response(request, 429, str(error))
    offset = _offset(request.headers.get("Last-Event-ID") or request.GET.get("offset"))

    def events():
        yield "retry: 1000\n\n"
        for event in generation.follow(message.pk, offset):
            if event is None:
                yield ": keep-alive\n\n"
            elif isinstance(event, generation.Waiting):
                yield f"event: waiting\ndata: {json.dumps(event.text)}\n\n"
            else:
                text, end = event
                yield f"id: {end}\nevent: text\ndata: {json.dumps(text)}\n\n"
        message.refresh_from_db()
        html = render_to_string(
            f"{MESSAGE}#message", {"conversation": conversation, "message": with_siblings(message)}, request=request
        )
        yield f"event: done\ndata: {json.dumps({'html': html})}\n\n"

    # The slots are given back when the stream ends or the server closes it (the client left).
    response = StreamingHttpResponse(counters.Holding(events(), slots), content_type="text/event-stream")
    # Each event must reach the browser at once: no caching, no proxy buffering.
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"
    return response


def _offset(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


@require_POST
def message_stop(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = _message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    services.message_stop(message=message)
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#message-{message.pk}")
    # The reply's stream delivers the stopped message.
    return HttpResponse(status=204)


@require_POST
def message_retry(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = _message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    return _change_branch(request, conversation, lambda: services.message_retry(message=message))


@require_POST
def message_regenerate(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = _message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    return _change_branch(request, conversation, lambda: services.message_regenerate(message=message))


@require_POST
def message_edit(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = _message(request, pk, message_pk, role=Message.Role.USER)
    form = EditForm(request.POST)
    if not form.is_valid():
        return _change_branch(request, conversation, None, error=form.errors["content"][0])
    return _change_branch(
        request, conversation, lambda: services.message_edit(message=message, content=form.cleaned_data["content"])
    )


@require_POST
def message_switch(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = _message(request, pk, message_pk)
    return _change_branch(
        request, conversation, lambda: services.conversation_switch(conversation=conversation, message=message)
    )


def _change_branch(request: HttpRequest, conversation: Conversation, change, *, error: str = "") -> HttpResponse:
    """Run a service that changes which messages the conversation shows, then show them.

    A refused change (a ChatError, or invalid input) changes nothing and answers 409 with
    the reason (429 when a quota or the rate limit refused it), shown beside the composer:
    in view wherever the person has scrolled, as a refused Send is. The messages are left as
    they are, so an edited text stays in its box.
    """
    status = 409 if error else 200
    if change is not None:
        try:
            change()
        except services.ChatError as refused:
            error, status = str(refused), _refusal_status(refused, default=409)
    if not request.htmx:
        return redirect(conversation)
    if error:
        response = render(request, f"{COMPOSER}#composer-errors", {"errors": [error]}, status=status)
        return reswap(retarget(response, "#composer-errors"), "outerHTML")
    conversation.refresh_from_db()
    return _page(request, f"{PAGE}#message-list-response", conversation=conversation)


@require_POST
def conversation_settings(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    form = ConversationSettingsForm(request.POST, instance=conversation, prefix="settings")
    saved = form.is_valid()
    if saved:
        services.conversation_update_settings(conversation=conversation, settings=form.cleaned_data)
        if not request.htmx:
            return redirect(conversation)
    status = 200 if saved else 422
    if request.htmx:
        context = {"conversation": conversation, "settings_form": form, "settings_saved": saved}
        return render(request, f"{SETTINGS}#settings-form", context, status=status)
    return _page(request, PAGE, conversation=conversation, settings_form=form, status=status)


def _refusal_status(error: services.ChatError, *, default: int = 422) -> int:
    if isinstance(error, services.DatabaseBusy):
        return 503
    return 429 if isinstance(error, services.LimitReached) else default


def _invalid_composer(request, form, *, conversation=None, settings_form=None, status=422) -> HttpResponse:
    """Show the form's errors and keep what was typed; nothing was stored."""
    if request.htmx and status >= 500:
        # htmx does not swap a 5xx: the composer keeps the text, and chat.js shows this line.
        return error_response(request, status, form.errors["content"][0])
    if not request.htmx:
        extra = {"settings_form": settings_form} if settings_form is not None else {}
        return _page(request, PAGE, conversation=conversation, message_form=form, status=status, **extra)
    context = {"conversation": conversation, "message_form": form, "settings_form": settings_form}
    response = render(request, f"{COMPOSER}#composer", context, status=status)
    return reswap(retarget(response, "#composer"), "outerHTML")

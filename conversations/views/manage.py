"""Managing the list of conversations: rename, pin, archive, delete and undo, and a conversation's settings."""

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from common.security import safe_next
from conversations import services
from conversations.forms import ConversationModelForm, ConversationSettingsForm, RenameForm
from conversations.models import Conversation
from conversations.selectors import chat_page
from conversations.sidebar import sidebar_page
from conversations.views._shared import (
    HEADER,
    PAGE,
    SETTINGS,
    SIDEBAR,
    folders_of,
    int_or_none,
    owned_conversation,
    render_chat,
    requested_sidebar,
)


def _sidebar_response(request: HttpRequest, *, status: int = 200, **context) -> HttpResponse:
    """The sidebar's first page, after a change to the list (rename, pin, archive, delete, restore)."""
    archived = request.POST.get("archived_view") == "1"
    page = sidebar_page(request.user, archived=archived)
    context = {
        "sidebar": page,
        "query": "",
        "archived": archived,
        "folder_choices": folders_of(request, page),
        **context,
    }
    return render(request, f"{SIDEBAR}#sidebar", context, status=status)


def _history_change(request: HttpRequest, conversation: Conversation, **context) -> HttpResponse:
    if not request.htmx:
        return redirect(safe_next(request, conversation.get_absolute_url()))
    return _sidebar_response(request, conversation=_current(request), **context)


def _current(request: HttpRequest) -> Conversation | None:
    """The conversation the person has open, for the sidebar's highlight (from htmx's HX-Current-URL)."""
    path = request.htmx.current_url_abs_path if request.htmx else None
    if path and path.startswith("/c/"):
        return Conversation(pk=int_or_none(path.split("/")[2]))
    return None


@require_GET
def conversation_manage(request: HttpRequest, pk: int) -> HttpResponse:
    """A sidebar item with its actions open (loaded on demand: the list itself stays small), or with
    `?panel=header` the actions of the chat header's ⋯ menu, when a new chat's response left them out."""
    conversation = owned_conversation(request, pk)
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#actions")
    if request.GET.get("panel") == "header":
        context = {"conversation": conversation, "folder_choices": folders_of(request)}
        return render(request, f"{PAGE}#header-actions", context)
    context = {
        "item": conversation,
        "open_menu": conversation.pk,
        "conversation": _current(request),
        "folder_choices": folders_of(request),
    }
    return render(request, f"{SIDEBAR}#conversation-item", context)


@require_POST
def conversation_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
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
    conversation = owned_conversation(request, pk)
    services.conversation_pin(conversation=conversation, pinned=request.POST.get("pinned") == "1")
    return _history_change(request, conversation)


@require_POST
def conversation_archive(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
    services.conversation_archive(conversation=conversation, archived=request.POST.get("archived") == "1")
    return _history_change(request, conversation)


@require_POST
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
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


@require_http_methods(["GET", "POST"])
def conversation_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the header's settings form, loaded when its panel is first opened (for htmx), or the chat
    page with the panel open and the form in it; POST: save the settings."""
    conversation = owned_conversation(request, pk)
    if request.method == "GET":
        return _settings_panel(request, conversation)
    form = ConversationSettingsForm(request.POST, instance=conversation, prefix="settings", user=request.user)
    return _save_header_form(request, conversation, form, name="settings", settings_open=True)


def _settings_panel(request: HttpRequest, conversation: Conversation) -> HttpResponse:
    if request.htmx:
        form = ConversationSettingsForm(instance=conversation, prefix="settings", user=request.user)
        response = render(request, f"{SETTINGS}#settings-form", {"conversation": conversation, "settings_form": form})
    else:
        page = chat_page(request.user, conversation, sidebar=requested_sidebar(request))
        response = render_chat(request, PAGE, page, settings_open=True)
    # One URL, two answers: a browser's cache (and htmx's history) must not give one for the other.
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_POST
def conversation_model(request: HttpRequest, pk: int) -> HttpResponse:
    """The header's model picker: the settings' model alone, checked and stored as they are."""
    conversation = owned_conversation(request, pk)
    form = ConversationModelForm(request.POST, instance=conversation, prefix="header", user=request.user)
    return _save_header_form(request, conversation, form, name="model")


def _save_header_form(request: HttpRequest, conversation: Conversation, form, *, name: str, **page) -> HttpResponse:
    """Save the settings one of the header's forms holds (`name`: "settings" or "model") through the one
    settings service. For htmx, the header's `<name>-response` with both forms, the other one built
    from what was saved (the model picker and the system prompt badge show it); else the chat page."""
    saved = form.is_valid()
    if saved:
        services.conversation_update_settings(conversation=conversation, settings=form.cleaned_data)
        if not request.htmx:
            return redirect(conversation)
    status = 200 if saved else 422
    if not request.htmx:
        chat = chat_page(request.user, conversation, sidebar=requested_sidebar(request))
        return render_chat(request, PAGE, chat, status=status, **{f"{name}_form": form}, **page)
    if name == "settings":
        other = "model_form", ConversationModelForm(instance=conversation, prefix="header", user=request.user)
    else:
        other = "settings_form", ConversationSettingsForm(instance=conversation, prefix="settings", user=request.user)
    context = {"conversation": conversation, f"{name}_form": form, f"{name}_saved": saved, other[0]: other[1]}
    return render(request, f"{HEADER}#{name}-response", context, status=status)

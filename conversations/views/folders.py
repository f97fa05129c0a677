"""Folders in the sidebar: create, rename, delete, collapse, and filing a conversation in one."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from common.security import safe_next
from conversations import services
from conversations.forms import FolderForm, MoveForm
from conversations.views._shared import owned_conversation, owned_folder
from conversations.views.manage import _current, _sidebar_response


def _folder_change(request: HttpRequest, change, *, form=None, **on_error) -> HttpResponse:
    """Run a folder service (unless `form` is invalid); show the sidebar after it, or (422) the reason it was
    refused, where `on_error` says (`folder_error_for`: a folder's id or "new"; `open_menu`: a chat's menu)."""
    error = ""
    if form is not None and not form.is_valid():
        error = next(iter(form.errors.values()))[0]
    else:
        try:
            change()
        except services.ChatError as refused:
            error = str(refused)
    if not request.htmx:
        if error:
            return HttpResponse(error, status=422, content_type="text/plain")
        return redirect(safe_next(request, reverse("conversations:index")))
    extra = {"folder_error": error, **on_error} if error else {}
    return _sidebar_response(request, conversation=_current(request), status=422 if error else 200, **extra)


@require_POST
def folder_create(request: HttpRequest) -> HttpResponse:
    form = FolderForm(request.POST)
    return _folder_change(
        request,
        lambda: services.folder_create(owner=request.user, name=form.cleaned_data["name"]),
        folder_error_for="new",
        form=form,
    )


@require_POST
def folder_rename(request: HttpRequest, folder_pk: int) -> HttpResponse:
    folder = owned_folder(request, folder_pk)
    form = FolderForm(request.POST)
    return _folder_change(
        request,
        lambda: services.folder_rename(folder=folder, name=form.cleaned_data["name"]),
        folder_error_for=folder.pk,
        form=form,
    )


@require_POST
def folder_delete(request: HttpRequest, folder_pk: int) -> HttpResponse:
    folder = owned_folder(request, folder_pk)
    return _folder_change(request, lambda: services.folder_delete(folder=folder), folder_error_for=folder.pk)


@require_POST
def folder_collapse(request: HttpRequest, folder_pk: int) -> HttpResponse:
    """Remember a folder opened or closed in the sidebar (folders.js posts it on each toggle)."""
    folder = owned_folder(request, folder_pk)
    services.folder_collapse(folder=folder, collapsed=request.POST.get("collapsed") == "1")
    if not request.htmx:
        return redirect(safe_next(request, reverse("conversations:index")))
    return HttpResponse(status=204)


@require_POST
def conversation_move(request: HttpRequest, pk: int) -> HttpResponse:
    """File a conversation in a folder (`folder`: one of the person's, or blank for none): the menu's form,
    and drag and drop."""
    conversation = owned_conversation(request, pk)
    form = MoveForm(request.POST)
    target = form.cleaned_data["folder"] if form.is_valid() else None
    folder = owned_folder(request, target) if target else None
    return _folder_change(
        request,
        lambda: services.conversation_move(conversation=conversation, folder=folder),
        open_menu=conversation.pk,
        form=form,
    )

"""History beyond the chat: export and import, and share links with their public page."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from common.errors import error_response
from conversations import history, markdown_export, selectors, services
from conversations.forms import ImportForm
from conversations.models import Conversation, ShareLink
from conversations.views._shared import PAGE, owned_conversation

HISTORY_PAGE = "conversations/history.html"
SHARED_PAGE = "conversations/shared.html"
_EXPORT_TYPES = {"json": "application/json", "md": "text/markdown; charset=utf-8"}


def _export(conversations, fmt: str, filename: str) -> StreamingHttpResponse:
    pieces = history.export_json(conversations) if fmt == "json" else markdown_export.export_markdown(conversations)
    response = StreamingHttpResponse((piece.encode() for piece in pieces), content_type=_EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def conversation_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    conversation = owned_conversation(request, pk)
    if fmt not in _EXPORT_TYPES:
        raise Http404
    if conversation.temporary:
        return error_response(request, 409, "A temporary chat is not kept, so it cannot be exported.")
    return _export([conversation], fmt, f"chatsite-conversation-{conversation.pk}")


@require_GET
def export_all(request: HttpRequest, fmt: str) -> StreamingHttpResponse:
    if fmt not in _EXPORT_TYPES:
        raise Http404
    kept = Conversation.objects.filter(owner=request.user, deleted_at__isnull=True, temporary=False)
    conversations = kept.select_related("folder").order_by("-updated_at", "-id")
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


@require_POST
def share_create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
    try:
        link = services.share_create(conversation=conversation)
    except services.ChatError as refused:
        if not request.htmx:
            return error_response(request, 409, str(refused))
        return _share_response(request, conversation, None, error=str(refused), status=409)
    return _share_response(request, conversation, link)


@require_POST
def share_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
    services.share_revoke(conversation=conversation)
    return _share_response(request, conversation, None)


def _share_response(
    request: HttpRequest, conversation: Conversation, link: ShareLink | None, *, error: str = "", status: int = 200
) -> HttpResponse:
    if not request.htmx:
        return redirect(conversation)
    context = {
        "conversation": conversation,
        "share_link": link,
        "public_title": selectors.public_title(conversation),
        "share_error": error,
    }
    return render(request, f"{PAGE}#share-panel", context, status=status)


@login_not_required
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """The public, read-only page of a share link: one conversation's current branch and nothing else."""
    link = (
        ShareLink.objects.select_related("conversation")
        # An owner whose account was deactivated shares nothing any more (accounts.offboarding).
        .filter(
            token=token,
            revoked_at__isnull=True,
            conversation__deleted_at__isnull=True,
            conversation__owner__is_active=True,
        )
        .first()
    )
    if link is None:
        # Most visitors of a share link have no account here: tell them why, with no way into the app.
        return error_response(
            request,
            404,
            "This shared link is no longer available: it was revoked, or it never existed. "
            "Ask whoever sent it for a new one.",
        )
    conversation = link.conversation
    shared = selectors.shared_page(conversation)
    context = {"conversation": conversation, "shared": shared, "messages_list": shared.messages}
    response = render(request, SHARED_PAGE, context)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of other sites' logs
    response["Cache-Control"] = "private, no-store"
    return response

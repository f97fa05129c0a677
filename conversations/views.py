"""HTTP views: parse input, call one service, render a page or (for htmx) a fragment."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, reswap, retarget

from conversations import services
from conversations.forms import ConversationSettingsForm, MessageForm
from conversations.models import Conversation, Message
from conversations.selectors import sidebar_conversations

PAGE = "conversations/chat.html"


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    return get_object_or_404(Conversation, pk=pk, owner=request.user)


def _page(request: HttpRequest, template: str, *, conversation=None, status=200, **context) -> HttpResponse:
    context.setdefault("message_form", MessageForm())
    if conversation is not None:
        context.setdefault("messages_list", list(conversation.messages.all()))
        context.setdefault("settings_form", ConversationSettingsForm(instance=conversation, prefix="settings"))
    else:
        context.setdefault("settings_form", ConversationSettingsForm(prefix="settings"))
    context.update(
        conversation=conversation, sidebar=sidebar_conversations(request.user), default_model=settings.AIMLAPI_MODEL
    )
    return render(request, template, context, status=status)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return _page(request, PAGE)


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, PAGE, conversation=_conversation(request, pk))


@require_POST
def conversation_create(request: HttpRequest) -> HttpResponse:
    form = MessageForm(request.POST)
    settings_form = ConversationSettingsForm(request.POST, prefix="settings")
    if not (form.is_valid() and settings_form.is_valid()):
        return _invalid_composer(request, form, settings_form=settings_form)
    try:
        user_message, _, _ = services.conversation_start(
            owner=request.user,
            content=form.cleaned_data["content"],
            client_id=form.cleaned_data["client_id"],
            model=settings.AIMLAPI_MODEL,
            settings=settings_form.cleaned_data,
        )
    except services.ChatError as error:
        form.add_error("content", str(error))
        return _invalid_composer(request, form, settings_form=settings_form)
    conversation = user_message.conversation
    if not request.htmx:
        return redirect(conversation)
    response = _page(request, f"{PAGE}#chat-pane-response", conversation=conversation)
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
            conversation=conversation, content=form.cleaned_data["content"], client_id=form.cleaned_data["client_id"]
        )
    except services.ChatError as error:
        form.add_error("content", str(error))
        return _invalid_composer(request, form, conversation=conversation)
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
@never_cache
def message_detail(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    message = get_object_or_404(Message, pk=message_pk, conversation=conversation)
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#message-{message.pk}")
    return render(request, f"{PAGE}#message", {"conversation": conversation, "message": message})


@require_POST
def message_retry(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    message = get_object_or_404(Message, pk=message_pk, conversation=conversation, role=Message.Role.ASSISTANT)
    status = 200
    try:
        message = services.message_retry(message=message)
    except services.ChatError:
        status = 409
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#message-{message.pk}")
    return render(request, f"{PAGE}#message", {"conversation": conversation, "message": message}, status=status)


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
        return render(request, f"{PAGE}#settings-form", context, status=status)
    return _page(request, PAGE, conversation=conversation, settings_form=form, status=status)


def _invalid_composer(request, form, *, conversation=None, settings_form=None) -> HttpResponse:
    """Show the form's errors and keep what was typed; nothing was stored."""
    if not request.htmx:
        extra = {"settings_form": settings_form} if settings_form is not None else {}
        return _page(request, PAGE, conversation=conversation, message_form=form, status=422, **extra)
    context = {"conversation": conversation, "message_form": form, "settings_form": settings_form}
    response = render(request, f"{PAGE}#composer", context, status=422)
    return reswap(retarget(response, "#composer"), "outerHTML")


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and uptime checks: 200 when the database answers."""
    connection.ensure_connection()
    return HttpResponse("ok", content_type="text/plain")

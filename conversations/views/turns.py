"""A turn of the chat: send a message, then stop, retry, regenerate, edit or switch one."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import push_url, reswap, retarget

from common.errors import error_response
from common.fairness import queued
from conversations import services
from conversations.forms import ConversationSettingsForm, EditForm, MessageForm, NewChatForm
from conversations.models import Conversation, Message
from conversations.selectors import chat_page
from conversations.sidebar_update import sidebar_after_turn
from conversations.views._shared import (
    COMPOSER,
    PAGE,
    owned_conversation,
    owned_message,
    render_chat,
    requested_sidebar,
)


@queued
@require_POST
def conversation_create(request: HttpRequest) -> HttpResponse:
    form = NewChatForm(request.POST)
    settings_form = ConversationSettingsForm(request.POST, prefix="settings", user=request.user)
    if not (form.is_valid() and settings_form.is_valid()):
        return _invalid_composer(request, form, settings_form=settings_form)
    try:
        chat_settings = dict(settings_form.cleaned_data)
        user_message, assistant_message, created = services.conversation_start(
            owner=request.user,
            content=form.cleaned_data["content"],
            client_id=form.cleaned_data["client_id"],
            model=chat_settings.pop("model"),
            settings=chat_settings,
            temporary=form.cleaned_data["temporary"],
        )
    except services.ChatError as error:
        form.add_error("content", str(error))
        return _invalid_composer(request, form, settings_form=settings_form, status=_refusal_status(error))
    conversation = user_message.conversation
    if not request.htmx:
        return redirect(conversation)
    # A new conversation holds just this turn: no need to read its tree back.
    turn = [message for message in (user_message, assistant_message) if message is not None]
    sidebar = sidebar_after_turn(request.user, conversation) if created else requested_sidebar(request)
    page = chat_page(request.user, conversation, sidebar=sidebar, messages=turn)
    # The header's ⋯ actions load when opened: they cost a render and a read of the folders.
    response = render_chat(request, f"{PAGE}#chat-pane-response", page, actions_later=True)
    response = retarget(response, "#chat-pane")
    response = reswap(response, "outerHTML")
    return push_url(response, conversation.get_absolute_url())


@queued
@require_POST
def message_create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = owned_conversation(request, pk)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _invalid_composer(request, form, conversation=conversation)
    updated_before, title_before = conversation.updated_at, conversation.title
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
    turn = [user_message, assistant_message]
    sidebar = sidebar_after_turn(request.user, conversation, updated_before=updated_before, title_before=title_before)
    page = chat_page(request.user, conversation, sidebar=sidebar, turn=turn)
    return render_chat(request, f"{PAGE}#turn-response", page)


@require_POST
def message_stop(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    services.message_stop(message=message)
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#message-{message.pk}")
    # The reply's stream delivers the stopped message.
    return HttpResponse(status=204)


@require_POST
def message_retry(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    return _change_branch(request, conversation, lambda: services.message_retry(message=message))


@require_POST
def message_regenerate(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    return _change_branch(request, conversation, lambda: services.message_regenerate(message=message))


@require_POST
def message_edit(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.USER)
    form = EditForm(request.POST)
    if not form.is_valid():
        return _change_branch(request, conversation, None, error=form.errors["content"][0])
    return _change_branch(
        request, conversation, lambda: services.message_edit(message=message, content=form.cleaned_data["content"])
    )


@require_POST
def message_switch(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk)
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
    page = chat_page(request.user, conversation, sidebar=requested_sidebar(request))
    return render_chat(request, f"{PAGE}#message-list-response", page)


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
        forms = {"message_form": form}
        if settings_form is not None:
            forms["settings_form"] = settings_form
        page = chat_page(request.user, conversation, sidebar=requested_sidebar(request))
        return render_chat(request, PAGE, page, status=status, **forms)
    context = {"conversation": conversation, "message_form": form, "settings_form": settings_form}
    response = render(request, f"{COMPOSER}#composer", context, status=status)
    return reswap(retarget(response, "#composer"), "outerHTML")

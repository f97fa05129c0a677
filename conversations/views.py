"""HTTP views: parse input, call one service, render a page or (for htmx) a fragment."""

import json
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url, reswap, retarget

from chatsite.security import SignupThrottle, ThrottledLoginView, client_ip
from conversations import generation, selectors, services
from conversations.forms import ConversationSettingsForm, EditForm, MessageForm
from conversations.models import Conversation, Message
from conversations.selectors import message_path, sidebar_conversations, with_siblings

PAGE = "conversations/chat.html"


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    return get_object_or_404(Conversation, pk=pk, owner=request.user)


def _message(request: HttpRequest, pk: int, message_pk: int, **filters) -> tuple[Conversation, Message]:
    conversation = _conversation(request, pk)
    return conversation, get_object_or_404(Message, pk=message_pk, conversation=conversation, **filters)


def _page(request: HttpRequest, template: str, *, conversation=None, status=200, **context) -> HttpResponse:
    if conversation is not None:
        context.setdefault("messages_list", message_path(conversation))
        last = context["messages_list"][-1:] or context.get("turn", [])[-1:]
        context.setdefault("message_form", MessageForm(initial={"parent": last[0].pk if last else None}))
        context.setdefault("settings_form", ConversationSettingsForm(instance=conversation, prefix="settings"))
    else:
        context.setdefault("settings_form", ConversationSettingsForm(prefix="settings"))
    context.setdefault("message_form", MessageForm())
    query = request.GET.get("q", "").strip()
    context.update(
        conversation=conversation,
        sidebar=sidebar_conversations(request.user, query=query),
        query=query,
        default_model=selectors.default_model_id(),
    )
    return render(request, template, context, status=status)


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return _page(request, PAGE)


@require_GET
def sidebar(request: HttpRequest) -> HttpResponse:
    """The conversation list, filtered by title (`?q=`), for the sidebar's search box."""
    query = request.GET.get("q", "").strip()
    if not request.htmx:
        return redirect(reverse("conversations:index") + (f"?{urlencode({'q': query})}" if query else ""))
    context = {"sidebar": sidebar_conversations(request.user, query=query), "query": query}
    return render(request, f"{PAGE}#sidebar", context)


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
    so a reconnect (Last-Event-ID, or `?offset=`) resumes without repeating anything. The
    `done` event carries the message's final HTML. Following a reply never starts one: any
    number of tabs and reconnects read the same generation.
    """
    conversation, message = _message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    offset = _offset(request.headers.get("Last-Event-ID") or request.GET.get("offset"))

    def events():
        yield "retry: 1000\n\n"
        for event in generation.follow(message.pk, offset):
            if event is None:
                yield ": keep-alive\n\n"
            else:
                text, end = event
                yield f"id: {end}\nevent: text\ndata: {json.dumps(text)}\n\n"
        message.refresh_from_db()
        html = render_to_string(
            f"{PAGE}#message", {"conversation": conversation, "message": with_siblings(message)}, request=request
        )
        yield f"event: done\ndata: {json.dumps({'html': html})}\n\n"

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
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
    the reason, shown above the messages (429 when a quota or the rate limit refused it).
    """
    status = 409 if error else 200
    if change is not None:
        try:
            change()
        except services.ChatError as refused:
            error, status = str(refused), _refusal_status(refused, default=409)
    if not request.htmx:
        return redirect(conversation)
    conversation.refresh_from_db()
    context = {"list_error": error}
    return _page(request, f"{PAGE}#message-list-response", conversation=conversation, status=status, **context)


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


def _refusal_status(error: services.ChatError, *, default: int = 422) -> int:
    return 429 if isinstance(error, services.LimitReached) else default


def _invalid_composer(request, form, *, conversation=None, settings_form=None, status=422) -> HttpResponse:
    """Show the form's errors and keep what was typed; nothing was stored."""
    if not request.htmx:
        extra = {"settings_form": settings_form} if settings_form is not None else {}
        return _page(request, PAGE, conversation=conversation, message_form=form, status=status, **extra)
    context = {"conversation": conversation, "message_form": form, "settings_form": settings_form}
    response = render(request, f"{PAGE}#composer", context, status=status)
    return reswap(retarget(response, "#composer"), "outerHTML")


class LoginView(ThrottledLoginView):
    """The throttled sign-in page (chatsite.security), with a link to sign up when ALLOW_SIGNUP is on."""

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "allow_signup": settings.ALLOW_SIGNUP}


@login_not_required
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    """Create an account (only when ALLOW_SIGNUP is on), then sign in."""
    if not settings.ALLOW_SIGNUP:
        raise Http404("Sign-up is turned off.")
    if request.user.is_authenticated:
        return redirect("conversations:index")
    form = UserCreationForm(request.POST or None)
    throttle = SignupThrottle(client_ip(request))
    if request.method == "POST" and not throttle.allowed():
        form.add_error(None, "Too many new accounts from your address. Try again in an hour.")
        return render(request, "registration/signup.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        user = services.user_signup(form=form)
        throttle.created()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("conversations:index")
    return render(request, "registration/signup.html", {"form": form}, status=422 if form.errors else 200)


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers and uptime checks: 200 when the database answers."""
    connection.ensure_connection()
    return HttpResponse("ok", content_type="text/plain")

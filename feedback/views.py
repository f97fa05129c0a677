"""Rating a reply: 👍 or 👎 with an optional reason, changed or removed by the conversation's owner."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from conversations.models import Message
from conversations.views._shared import owned_message
from feedback import selectors, services
from feedback.forms import FeedbackForm
from feedback.models import Feedback

CONTROLS = "feedback/_feedback.html#feedback"


@require_POST
def feedback_give(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    form = FeedbackForm(request.POST)
    feedback, error, status = None, "", 200
    if form.is_valid():
        try:
            feedback = services.feedback_give(message=message, user=request.user, **form.cleaned_data)
        except services.FeedbackError as refused:
            error, status = str(refused), 409
    else:
        error, status = next(iter(form.errors.values()))[0], 422
    if not request.htmx:
        if error:
            return HttpResponse(error, status=status, content_type="text/plain")
        return redirect(f"{conversation.get_absolute_url()}#message-{message.pk}")
    if error:
        feedback = selectors.feedback_of(message=message, user=request.user)
    context = {"conversation": conversation, "message": message, "feedback": feedback, "feedback_error": error}
    # A fresh 👎 opens its reason at once: the next Tab reaches it.
    context["feedback_opened"] = not error and feedback is not None and feedback.rating == Feedback.Rating.DOWN
    return render(request, CONTROLS, context, status=status)


@require_POST
def feedback_remove(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    conversation, message = owned_message(request, pk, message_pk, role=Message.Role.ASSISTANT)
    services.feedback_remove(message=message, user=request.user)
    if not request.htmx:
        return redirect(f"{conversation.get_absolute_url()}#message-{message.pk}")
    return render(request, CONTROLS, {"conversation": conversation, "message": message, "feedback": None})

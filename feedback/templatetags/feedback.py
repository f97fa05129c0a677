from django import template

from feedback.models import Feedback
from feedback.selectors import feedback_by_message

register = template.Library()


@register.simple_tag(takes_context=True)
def feedback_of(context, message) -> Feedback | None:
    """The signed-in person's feedback on `message`.

    All of theirs on the message's conversation is read at the first reply a response shows,
    so a page of replies costs one query, not one per reply."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    seen = request.__dict__.setdefault("_feedback_by_conversation", {})
    if message.conversation_id not in seen:
        seen[message.conversation_id] = feedback_by_message(request.user, message.conversation_id)
    return seen[message.conversation_id].get(message.pk)

import pytest

from conversations.models import Conversation, Message
from conversations.payload import build_messages

pytestmark = pytest.mark.django_db


def _add(conversation, role, content, status=Message.Status.COMPLETE):
    return Message.objects.create(conversation=conversation, role=role, content=content, status=status)


def test_it_puts_the_system_prompt_first_then_the_complete_history_in_order(alice):
    conversation = Conversation.objects.create(owner=alice, model="m", system_prompt="Answer in French.")
    _add(conversation, "user", "Hi")
    _add(conversation, "assistant", "Bonjour !")
    _add(conversation, "user", "What is 2+2?")
    _add(conversation, "assistant", "", status=Message.Status.ERROR)
    _add(conversation, "user", "Still there?")
    _add(conversation, "assistant", "Quatre.")
    pending = _add(conversation, "assistant", "", status=Message.Status.PENDING)

    assert build_messages(conversation, before=pending) == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour !"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "user", "content": "Still there?"},
        {"role": "assistant", "content": "Quatre."},
    ]


def test_it_leaves_out_a_blank_system_prompt_and_messages_after_the_one_being_answered(alice):
    conversation = Conversation.objects.create(owner=alice, model="m", system_prompt="   ")
    _add(conversation, "user", "First")
    failed = _add(conversation, "assistant", "", status=Message.Status.ERROR)
    _add(conversation, "user", "Second")
    _add(conversation, "assistant", "Reply to second")

    assert build_messages(conversation, before=failed) == [{"role": "user", "content": "First"}]


def test_it_leaves_out_other_conversations(alice, bob):
    mine = Conversation.objects.create(owner=alice, model="m")
    other = Conversation.objects.create(owner=bob, model="m")
    _add(mine, "user", "mine")
    _add(other, "user", "not mine")

    assert build_messages(mine) == [{"role": "user", "content": "mine"}]

"""The `messages` payload: the system prompt, then exactly the branch being answered."""

import pytest

from conversations.models import Conversation, Message
from conversations.payload import build_messages
from conversations.selectors import message_path

pytestmark = pytest.mark.django_db


def _add(conversation, role, content, parent=None, status=Message.Status.COMPLETE):
    return Message.objects.create(conversation=conversation, role=role, content=content, status=status, parent=parent)


def test_it_puts_the_system_prompt_first_then_the_usable_history_in_order(alice):
    conversation = Conversation.objects.create(owner=alice, model="m", system_prompt="Answer in French.")
    m1 = _add(conversation, "user", "Hi")
    m2 = _add(conversation, "assistant", "Bonjour !", m1)
    m3 = _add(conversation, "user", "What is 2+2?", m2)
    m4 = _add(conversation, "assistant", "Half an ans", m3, status=Message.Status.ERROR)
    m5 = _add(conversation, "user", "Still there?", m4)
    m6 = _add(conversation, "assistant", "Quatre", m5, status=Message.Status.STOPPED)
    m7 = _add(conversation, "user", "And 3+3?", m6)
    m8 = _add(conversation, "assistant", "", m7, status=Message.Status.COMPLETE)
    m9 = _add(conversation, "user", "Hello?", m8)

    assert build_messages(conversation, upto=m9) == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bonjour !"},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "user", "content": "Still there?"},
        {"role": "assistant", "content": "Quatre"},  # a stopped reply's text is part of the chat
        {"role": "user", "content": "And 3+3?"},
        {"role": "user", "content": "Hello?"},
    ]


def test_it_sends_only_the_branch_being_answered_never_its_alternatives(alice):
    conversation = Conversation.objects.create(owner=alice, model="m", system_prompt="   ")
    question = _add(conversation, "user", "Name a colour")
    _add(conversation, "assistant", "Red", question)
    blue = _add(conversation, "assistant", "Blue", question)  # regenerated
    follow_up = _add(conversation, "user", "Why?", blue)
    _add(conversation, "user", "Name a fruit")  # an edited first message: a second root

    assert build_messages(conversation, upto=follow_up) == [
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "Blue"},
        {"role": "user", "content": "Why?"},
    ]
    assert build_messages(conversation, upto=None) == []


def test_it_leaves_out_other_conversations(alice, bob):
    mine = Conversation.objects.create(owner=alice, model="m")
    other = Conversation.objects.create(owner=bob, model="m")
    question = _add(mine, "user", "mine")
    _add(other, "user", "not mine")

    assert build_messages(mine, upto=question) == [{"role": "user", "content": "mine"}]


def test_the_path_shows_the_current_branch_with_its_alternatives(alice):
    conversation = Conversation.objects.create(owner=alice, model="m")
    question = _add(conversation, "user", "Name a colour")
    red = _add(conversation, "assistant", "Red", question)
    blue = _add(conversation, "assistant", "Blue", question)
    green = _add(conversation, "assistant", "Green", question)
    conversation.current_message = blue
    conversation.save()

    path = message_path(conversation)

    assert [message.content for message in path] == ["Name a colour", "Blue"]
    assert (path[0].sibling_ids, path[0].sibling_index) == ([question.pk], 1)
    assert (path[1].sibling_ids, path[1].sibling_index) == ([red.pk, blue.pk, green.pk], 2)
    assert (path[1].previous_sibling_id, path[1].next_sibling_id) == (red.pk, green.pk)

"""The Markdown export: each conversation's current branch, for reading (not for import)."""

from collections.abc import Iterable, Iterator

from conversations import history
from conversations.models import Conversation, Message


def export_markdown(conversations: Iterable[Conversation]) -> Iterator[str]:
    """Each conversation's current branch as Markdown, for reading (not for import)."""
    for number, (conversation, messages) in enumerate(history.with_messages(conversations)):
        by_id = {message.pk: message for message in messages}
        branch, node = [], by_id.get(conversation.current_message_id) or (messages[-1] if messages else None)
        while node is not None:
            branch.append(node)
            node = by_id.get(node.parent_id)
        lines = ["\n---\n\n" if number else "", f"# {conversation.display_title}\n\n"]
        lines.append(f"*{conversation.model} · created {history.time_text(conversation.created_at)}*\n\n")
        if conversation.system_prompt:
            lines.append(f"**System prompt:** {conversation.system_prompt}\n\n")
        for message in reversed(branch):
            lines.append(f"## {'You' if message.role == Message.Role.USER else message.role.capitalize()}\n\n")
            lines.append(f"{message.content}\n\n")
        yield "".join(lines)

"""Seed one account with a large history, for the history benchmark (bench/history_bench.py).

Defaults: 100,000 conversations and 1,000,000 messages in all, one of the conversations
holding 5,000 messages. Rows are written with bulk_create in batches, one transaction per
batch. The command does nothing when the account already holds the requested number of
conversations; --reset removes the account's history first.
"""

import random
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from conversations import markdown
from conversations.models import Conversation, Message, ShareLink

# A word that occurs exactly once, in a message written weeks before the newest one.
RARE_WORD = "quokkafjord"
BATCH = 1000  # conversations per transaction
SPAN = timedelta(days=730)  # the history covers two years


def _vocabulary(rng: random.Random) -> list[str]:
    common = (  # noqa: SIM905 - a word list reads better as text
        "the of and to in is you that it for on with as are this be at or have from not by but what all were "
        "when can there use an each which how their if will up other about out many then them these so some "
        "would make like into time has look two more write go see number way could people than first water "
        "been call who oil now find long down day did get come made may part python django query index server "
        "client cache thread socket model prompt token reply stream branch history"
    ).split()
    syllables = ["ka", "lo", "mi", "ra", "te", "su", "van", "dor", "pel", "qui", "zen", "bro", "tal", "nik", "os"]
    invented = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(6000)}
    invented.discard(RARE_WORD)
    return common * 8 + sorted(invented)


class Command(BaseCommand):
    help = "Seed an account with a large history (100,000 conversations, 1,000,000 messages) for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="bench")
        parser.add_argument("--password", default="bench-history")
        parser.add_argument("--conversations", type=int, default=100_000)
        parser.add_argument(
            "--messages", type=int, default=1_000_000, help="All messages, the long conversation's too."
        )
        parser.add_argument("--long", type=int, default=5_000, help="Messages of the one long conversation.")
        parser.add_argument("--reset", action="store_true", help="Remove the account's history first.")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options):
        count, total, long_count = options["conversations"], options["messages"], options["long"]
        if count < 2 or total < long_count + (count - 1):
            raise CommandError("Need at least 2 conversations and one message for each besides the long one.")
        started = time.monotonic()
        User = get_user_model()
        user, created = User.objects.get_or_create(username=options["username"])
        if created:
            user.set_password(options["password"])
            user.save()
        if options["reset"]:
            self._reset(user)
        elif Conversation.objects.filter(owner=user).count() >= count:
            self.stdout.write(f"{user.username} already has {count} conversations or more: nothing to do.")
            return
        elif Conversation.objects.filter(owner=user).exists():
            raise CommandError(f"{user.username} has part of a history: run again with --reset.")

        rng = random.Random(options["seed"])  # noqa: S311 - reproducible sample text, not secrets
        self.words = _vocabulary(rng)
        self.rng = rng
        self.now = timezone.now()
        self.next_conversation_id = (Conversation.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
        self.next_message_id = (Message.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1

        # Messages per ordinary conversation: as even as the totals allow.
        ordinary = count - 1
        per, extra = divmod(total - long_count, ordinary)
        plan = [per + (1 if index < extra else 0) for index in range(ordinary)]
        rare_index = min(ordinary - 1, ordinary * 45 // 730)  # written about 45 days ago

        self._long_conversation(user, long_count)
        for start in range(0, ordinary, BATCH):
            self._batch(user, start, plan[start : start + BATCH], count, rare_index)
            if (start // BATCH) % 10 == 0:
                self.stdout.write(f"  {start + BATCH} conversations ({time.monotonic() - started:.0f} s)")
        self._reset_sequences()
        seconds = time.monotonic() - started
        messages = Message.objects.filter(conversation__owner=user).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {user.username} (password {options['password']!r} if the account was new): "
                f"{count} conversations, {messages} messages, in {seconds:.1f} s on {connection.vendor}. "
                f"The word {RARE_WORD!r} occurs once, about 45 days back."
            )
        )

    def _text(self, low: int, high: int) -> str:
        return " ".join(self.rng.choices(self.words, k=self.rng.randint(low, high)))

    def _conversation(self, user, updated_at, title: str, **fields) -> Conversation:
        conversation = Conversation(
            id=self.next_conversation_id,
            owner=user,
            title=title,
            model="mistralai/mistral-tiny",
            created_at=updated_at - timedelta(minutes=30),
            updated_at=updated_at,
            **fields,
        )
        self.next_conversation_id += 1
        return conversation

    def _chain(self, conversation: Conversation, length: int, *, rare: bool = False, rich: bool = False):
        """`length` messages, person and assistant in turn, each the parent of the next."""
        messages, parent_id = [], None
        for position in range(length):
            role = Message.Role.USER if position % 2 == 0 else Message.Role.ASSISTANT
            content = self._text(6, 16) if role == Message.Role.USER else self._text(15, 35)
            if rare and position == 2:
                content = f"{content} {RARE_WORD} {self._text(3, 6)}"
            if rich and role == Message.Role.ASSISTANT and position % 10 == 1:
                content = f"**{content[:20]}**\n\n- {content[20:60]}\n- more\n\n```python\nprint({position})\n```"
            # Plain words render to one paragraph: the stored HTML is what markdown.render
            # would store on first display (checked on the long conversation, which is rendered).
            html = markdown.render(content) if rich else f"<p>{content}</p>\n"
            at = conversation.created_at + timedelta(seconds=position * 20)
            messages.append(
                Message(
                    id=self.next_message_id,
                    conversation=conversation,
                    parent_id=parent_id,
                    role=role,
                    content=content,
                    content_html=html,
                    html_version=markdown.VERSION,
                    model=conversation.model if role == Message.Role.ASSISTANT else "",
                    finish_reason="stop" if role == Message.Role.ASSISTANT else "",
                    total_tokens=len(content.split()) * 2 if role == Message.Role.ASSISTANT else None,
                    created_at=at,
                )
            )
            parent_id = self.next_message_id
            self.next_message_id += 1
        conversation.current_message_id = parent_id
        return messages

    @transaction.atomic
    def _long_conversation(self, user, length: int) -> None:
        conversation = self._conversation(user, self.now, "One very long conversation")
        conversation.created_at = self.now - timedelta(seconds=length * 20)
        messages = self._chain(conversation, length, rich=True)
        if markdown.render("plain words here") != "<p>plain words here</p>\n":
            raise CommandError("markdown.render changed: update the seed's stored HTML for plain text.")
        self._store([conversation], messages)

    @transaction.atomic
    def _batch(self, user, start: int, plan: list[int], count: int, rare_index: int) -> None:
        conversations, messages = [], []
        for offset, length in enumerate(plan):
            index = start + offset
            updated_at = self.now - SPAN * ((index + 1) / count)
            fields = {}
            if index in (5, 500, 50_000):
                fields["pinned_at"] = updated_at
            elif index % 100 == 99:
                fields["archived_at"] = updated_at
            conversation = self._conversation(user, updated_at, self._text(2, 6)[:80].capitalize(), **fields)
            messages += self._chain(conversation, length, rare=index == rare_index)
            conversations.append(conversation)
        self._store(conversations, messages)

    def _store(self, conversations, messages) -> None:
        Conversation.objects.bulk_create(conversations, batch_size=2000)
        # current_message points at a message stored just after: foreign keys are checked at commit.
        Message.objects.bulk_create(messages, batch_size=2000)

    def _reset(self, user) -> None:
        started = time.monotonic()
        with transaction.atomic():
            owned = Conversation.objects.filter(owner=user)
            ShareLink.objects.filter(conversation__owner=user).delete()
            owned.update(current_message=None)
            # Raw deletes: the collector would load a million rows to cascade what SQL does at once.
            Message.objects.filter(conversation__owner=user)._raw_delete(connection.alias)
            owned._raw_delete(connection.alias)
        self.stdout.write(f"Removed {user.username}'s history in {time.monotonic() - started:.1f} s.")

    def _reset_sequences(self) -> None:
        from django.core.management.color import no_style

        statements = connection.ops.sequence_reset_sql(no_style(), [Conversation, Message])
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

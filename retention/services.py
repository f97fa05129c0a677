"""Writes of retention: applying the site's periods, and deleting all of one person's data."""

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from conversations.models import Conversation
from retention import purge
from retention.models import GroupRetention, RetentionRun
from retention.policy import Periods, site_periods
from usage.models import Usage


class RetentionError(Exception):
    """A deletion refused, with the sentence the person reads."""


def expired_conversations(*, now: datetime, site_days: int) -> QuerySet[Conversation]:
    """Conversations not updated for longer than their owner's period (policy.conversation_days_for), in one query."""
    policies = GroupRetention.objects.filter(group__user=OuterRef("owner_id"))
    annotated = Conversation.objects.filter(import_batch__isnull=True).annotate(
        group_forever=Exists(policies.filter(conversation_days=0)),
        group_days=Subquery(policies.order_by("-conversation_days").values("conversation_days")[:1]),
    )
    # One condition per distinct period: the site's for people without a group period, and each
    # group period for those whose longest it is.
    due = Q()
    if site_days:
        due |= Q(group_days__isnull=True, updated_at__lt=now - timedelta(days=site_days))
    group_periods = GroupRetention.objects.filter(conversation_days__gt=0).values_list("conversation_days", flat=True)
    for days in set(group_periods):
        due |= Q(group_forever=False, group_days=days, updated_at__lt=now - timedelta(days=days))
    return annotated.filter(due) if due else Conversation.objects.none()


def trashed_conversations(*, now: datetime, trash_days: int) -> QuerySet[Conversation]:
    """Conversations in the trash for longer than `trash_days` (none when it is 0)."""
    if not trash_days:
        return Conversation.objects.none()
    return Conversation.objects.filter(import_batch__isnull=True, deleted_at__lt=now - timedelta(days=trash_days))


def usage_with_content(*, now: datetime, usage_content_days: int) -> QuerySet[Usage]:
    """Usage rows older than the period that still point at the message they were for."""
    if not usage_content_days:
        return Usage.objects.none()
    return Usage.objects.filter(created_at__lt=now - timedelta(days=usage_content_days), message__isnull=False)


def apply_retention(
    *, dry_run: bool = False, batch_size: int | None = None, now: datetime | None = None
) -> RetentionRun:
    """Delete what the periods in force say is due, in short batches, and record the run.

    A dry run counts instead and changes nothing but its own RetentionRun row. An error ends
    the run with the error stored on it (the batches done before stay done) and is raised again.
    """
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    periods = site_periods()
    run = RetentionRun.objects.create(started_at=now, dry_run=dry_run)
    try:
        _apply(run, periods, now=now, batch_size=batch_size)
    except Exception as error:
        run.error = f"{type(error).__name__}: {error}"
        raise
    finally:
        run.finished_at = timezone.now()
        run.save()
    return run


def due_conversations(
    *, periods: Periods, now: datetime, writing: bool = True
) -> tuple[QuerySet[Conversation], QuerySet[Conversation]]:
    """The conversations past their period, and those past the trash's and not already in the first.
    `writing=False` leaves out those with a reply being written: what a run removes now."""
    old = expired_conversations(now=now, site_days=periods.conversation_days)
    trash = trashed_conversations(now=now, trash_days=periods.trash_days).exclude(pk__in=old.values("pk"))
    if not writing:
        old, trash = old.exclude(purge.generating(now=now)), trash.exclude(purge.generating(now=now))
    return old, trash


def _apply(run: RetentionRun, periods: Periods, *, now: datetime, batch_size: int) -> None:
    usage = usage_with_content(now=now, usage_content_days=periods.usage_content_days)
    if run.dry_run:
        old, trash = due_conversations(periods=periods, now=now, writing=False)
        by_age, from_trash = purge.count(old), purge.count(trash)
        # The usage rows of conversations that go lose their message with them, not here.
        run.usage_unlinked = usage.exclude(message__conversation__in=_either(old, trash).values("pk")).count()
    else:
        old, trash = due_conversations(periods=periods, now=now)
        by_age = purge.delete(old, now=now, batch_size=batch_size)
        from_trash = purge.delete(trash, now=now, batch_size=batch_size)
        run.usage_unlinked = _unlink_usage(usage, batch_size=batch_size * 10)
    # What is still due after the run (or all of it, after a dry run) had a reply being written.
    run.skipped_generating = (
        _either(*due_conversations(periods=periods, now=now)).filter(purge.generating(now=now)).count()
    )
    run.conversations, run.trash = by_age.conversations, from_trash.conversations
    run.messages = by_age.messages + from_trash.messages
    run.share_links = by_age.share_links + from_trash.share_links


def _either(old: QuerySet[Conversation], trash: QuerySet[Conversation]) -> QuerySet[Conversation]:
    return Conversation.objects.filter(Q(pk__in=old.values("pk")) | Q(pk__in=trash.values("pk")))


def _unlink_usage(rows: QuerySet[Usage], *, batch_size: int) -> int:
    unlinked = 0
    while batch := list(rows.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        unlinked += Usage.objects.filter(pk__in=batch).update(message=None)
    return unlinked


@dataclass(frozen=True)
class Erased:
    """What deleting a person's data removed; their usage rows stay, without their name."""

    conversations: int
    messages: int
    share_links: int
    tokens: int
    usage_kept: int

    def as_dict(self) -> dict:
        return asdict(self)


def user_data_delete(*, user: AbstractBaseUser, batch_size: int | None = None) -> Erased:
    """Delete a person's conversations (imports and the trash too), messages, share links, API
    tokens and account; their usage rows are kept for the site's accounting, with no user.

    Refused for a superuser (so the last admin cannot lock the site out by one click; another
    admin deletes the account in the admin) and while a reply of theirs is being written.
    """
    if user.is_superuser:
        raise RetentionError(
            "An administrator's account cannot delete itself here, so that a site is never left "
            "without one by accident. Ask another administrator to delete it in the admin. Nothing was deleted."
        )
    now = timezone.now()
    owned = Conversation.objects.filter(owner=user)
    if owned.filter(purge.generating(now=now)).exists():
        raise RetentionError(_STILL_WRITING)
    removed = purge.delete(owned, now=now, batch_size=batch_size or settings.RETENTION_BATCH_SIZE)
    with transaction.atomic():
        # A reply started in another tab since the check above keeps the account, to try again.
        if owned.filter(purge.generating(now=timezone.now())).exists():
            raise RetentionError(_STARTED_MEANWHILE)
        usage_kept = Usage.objects.filter(user=user).count()
        tokens = user.access_tokens.count()  # api's tokens go with the account (on_delete=CASCADE)
        user.delete()
    return Erased(
        conversations=removed.conversations,
        messages=removed.messages,
        share_links=removed.share_links,
        tokens=tokens,
        usage_kept=usage_kept,
    )


_STILL_WRITING = (
    "A reply is still being written in one of your conversations. Stop it or let it finish, "
    "then try again. Nothing was deleted."
)
_STARTED_MEANWHILE = (
    "A reply started in another tab while your conversations were being deleted, so your account "
    "is kept for now. Stop the reply or let it finish, then try again."
)

"""Off-boarding: however a person is deactivated, their access ends at once.

The admin's action and change form, `manage.py shell`, and single sign-on refusing someone at
sign-in (`user.is_active = False; user.save(update_fields=["is_active"])`) all come through
`post_save`: once the deactivation is committed, every session of the person is deleted (the
database row and, with REDIS_URL, its cached copy that every process reads) and
`common.signals.access_ended` is sent, on which conversations stops the person's live replies.

Sessions are the second lock, not the first: Django's ModelBackend refuses an inactive user on
every request (`get_user` reads `is_active` from the database each time), so a session missed
here, or a deactivation by a bare `QuerySet.update()` that sends no signal, still lets nobody in.
Share links and API tokens check that their owner is active on every use.
"""

import logging
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.cache import caches
from django.db import transaction
from django.utils import timezone

from common.signals import access_ended

logger = logging.getLogger(__name__)
audit = logging.getLogger("chatsite.audit")


def sessions_end(*, user) -> int:
    """Delete every session of `user` in the session store; returns how many there were.

    Sessions name their user only inside their signed data, so the unexpired ones are read
    through, once per deactivation (bench figures in the README), and the person's are deleted
    together: the rows, and with cached_db their cached copies, which every process reads. A
    store that cannot be listed (sessions only in the cache, or in signed cookies) is left to
    the backend's refusal on the next request.
    """
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        return 0
    model = store.get_model_class()
    rows = model.objects.filter(expire_date__gt=timezone.now()).values_list("session_key", "session_data")
    decoder, user_id = store(), str(user.pk)  # Django keeps the id as a string
    keys = [key for key, data in rows.iterator(chunk_size=2000) if decoder.decode(data).get(SESSION_KEY) == user_id]
    if not keys:
        return 0
    model.objects.filter(session_key__in=keys).delete()
    if hasattr(store, "cache_key_prefix"):  # cached_db: the copies every process reads first
        caches[settings.SESSION_CACHE_ALIAS].delete_many([store.cache_key_prefix + key for key in keys])
    return len(keys)


def access_end(*, user) -> int:
    """End everything `user` has open: sessions here, live replies through `access_ended`.
    Returns how many sessions were ended."""
    ended = sessions_end(user=user)
    for receiver, result in access_ended.send_robust(sender=type(user), user=user):
        if isinstance(result, Exception):
            logger.error("ending the access of user #%s: %s failed", user.pk, receiver, exc_info=result)
    audit.info("the access of %s (#%s) ended: %s session(s)", user, user.pk, ended)
    return ended


def user_deactivate(*, user) -> bool:
    """Deactivate `user` and end their access once committed; False when they were inactive already."""
    if not user.is_active:
        return False
    user.is_active = False
    user.save(update_fields=["is_active"])  # remembered_active → deactivated does the rest
    return True


# --- The receivers, connected in AccountsConfig.ready -------------------------------------
def remembered_active(sender, instance, **kwargs) -> None:
    # Whether the row was active when loaded: only a change to inactive ends anything.
    instance._was_active = instance.__dict__.get("is_active")


def deactivated(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created or instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    if getattr(instance, "_was_active", True) is False:
        return  # inactive already: saved again for another reason
    instance._was_active = False
    transaction.on_commit(lambda: access_end(user=instance))

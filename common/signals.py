"""Events one app sends and another hears, where the two may not import each other.

They name only Django's own models, so every app may send or connect them from here.
"""

from django.dispatch import Signal

# A person's access was taken away (accounts.offboarding, once their deactivation is committed):
# their sessions are already ended; apps end whatever else the person has running. Sent with
# `user`; receivers must not fail the sender (see accounts.offboarding).
access_ended = Signal()

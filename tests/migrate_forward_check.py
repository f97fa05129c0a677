"""After the forward migration, read what tests/migrate_forward_fill.py stored through the new
code's ORM, and print it as JSON: whether the stored key decrypts to MIGRATE_FORWARD_SECRET, and
whether the group's member has each permission named on the command line."""

import json
import os
import sys

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402

from providers.keys import secret_of  # noqa: E402
from providers.models import ProviderKey  # noqa: E402

carol = User.objects.get(username="carol")
print(
    json.dumps(
        {
            "decrypts": secret_of(ProviderKey.objects.get(label="team key")) == os.environ["MIGRATE_FORWARD_SECRET"],
            "perms": {perm: carol.has_perm(perm) for perm in sys.argv[1:]},
        }
    )
)

"""WSGI entry point for gunicorn (see Procfile)."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

try:
    settings.SECRET_KEY  # noqa: B018 - Django raises here when it is empty
except ImproperlyConfigured:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Put a long random value in the environment or in .env "
        "(`make run` writes one for you), or set DEBUG=1 for a development-only key."
    ) from None

application = get_wsgi_application()

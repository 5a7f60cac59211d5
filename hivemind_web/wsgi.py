import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from hivemind_web.chunked import ChunkedBodies

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hivemind_web.settings")
# Bodies sent in chunks, with no length (JavaScript OTLP exporters), are read too.
application = ChunkedBodies(get_wsgi_application(), settings.HIVEMIND_MAX_BODY_BYTES)

"""ASGI entry point: HTTP through Django, websockets through Channels."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartscheduler.settings")
# Django must be set up before anything imports models (as get_asgi_application does).
django.setup(set_prefix=False)

from smartscheduler.handlers import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from smartscheduler.routing import websocket_urlpatterns  # noqa: E402
from tenants.middleware import TenantWebsocketMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            TenantWebsocketMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)

# Everything imported so far (Django, the apps, their modules) lives as long as
# the process: moved out of the collector's generations, it is never traced
# again, and the first collections no longer walk it (tail latency of a turn).
gc.freeze()

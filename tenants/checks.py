from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def check_time_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    # Every datetime is stored in UTC; local time exists only for calendar maths.
    errors = []
    if not settings.USE_TZ:
        errors.append(Error("USE_TZ must be True: all times are stored in UTC.", id="tenants.E001"))
    if settings.TIME_ZONE != "UTC":
        errors.append(Error("TIME_ZONE must be 'UTC'; businesses carry their own zone.",
                            id="tenants.E002"))
    return errors


@register()
def check_tenant_databases(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for alias, db in settings.DATABASES.items():
        if db.get("ATOMIC_REQUESTS"):
            errors.append(Error(f"ATOMIC_REQUESTS must be off (database {alias}).",
                                id="tenants.E003"))
    if "tenants.router.TenantRouter" not in settings.DATABASE_ROUTERS:
        errors.append(Error("tenants.router.TenantRouter must be in DATABASE_ROUTERS.",
                            id="tenants.E004"))
    return errors

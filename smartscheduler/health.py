"""Answers ``/healthz`` before the host check.

Load balancers and container health checks call a task by its private IP
(an ALB sends ``Host: 10.0.x.y:8000``), which ALLOWED_HOSTS rightly refuses, so
the probe would see 400 and drain a healthy task. The probe returns no
host-derived data, so skipping host validation for this one path is safe.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from smartscheduler.views import healthz

HEALTH_PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH:
            response: HttpResponse = healthz(request)
            return response
        return self.get_response(request)

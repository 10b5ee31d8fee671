from django.urls import path

from booking.api import api

urlpatterns = [
    path("api/", api.urls),
]

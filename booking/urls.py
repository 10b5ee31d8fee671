from django.urls import path

from booking import dashboard_views, views, waitlist_views
from booking.api import api

urlpatterns = [
    path("api/", api.urls),
    path("b/<slug:slug>/", views.booking_page, name="booking_page"),
    path("b/<slug:slug>/book/", views.booking_details, name="booking_details"),
    path("b/<slug:slug>/booked/<str:reference>/", views.booking_done, name="booking_done"),
    path("b/<slug:slug>/manage/<str:token>/", views.booking_manage, name="booking_manage"),
    path("b/<slug:slug>/manage/<str:token>/cancel/", views.booking_cancel,
         name="booking_cancel"),
    path("b/<slug:slug>/manage/<str:token>/reschedule/", views.booking_reschedule,
         name="booking_reschedule"),
    path("b/<slug:slug>/manage/<str:token>/appointment.ics", views.booking_calendar,
         name="booking_calendar"),
    path("b/<slug:slug>/waitlist/join/", views.booking_waitlist_join,
         name="booking_waitlist_join"),
    path("b/<slug:slug>/calendar/<str:token>.ics", dashboard_views.calendar_feed,
         name="booking_calendar_feed"),
    path("b/<slug:slug>/waitlist/<str:token>/", waitlist_views.offer, name="waitlist_offer"),
]

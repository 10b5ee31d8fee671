from django.urls import path

from agent import views

urlpatterns = [
    path("widget.js", views.widget_js, name="chat_widget_js"),
    path("b/<slug:slug>/chat/", views.chat_page, name="chat_page"),
]

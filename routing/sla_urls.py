from django.urls import path

from routing import sla_views

app_name = "sla"

urlpatterns = [
    path("", sla_views.sla_board, name="board"),
]

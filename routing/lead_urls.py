"""Routing's views under /leads/ (the lead page's "Owner" panel posts here, as it did when the
form was the leads app's)."""

from django.urls import path

from routing import views

app_name = "routing-leads"

urlpatterns = [
    path("<int:lead_id>/reassign/", views.lead_reassign_view, name="lead_reassign"),
]

"""Mounted at leads/<lead_id>/privacy/ (config/urls.py)."""

from django.urls import path

from leads import privacy_views

app_name = "leads-privacy"

urlpatterns = [
    path("", privacy_views.privacy_page, name="page"),
    path("export/", privacy_views.privacy_export, name="export"),
    path("erase/", privacy_views.privacy_erase, name="erase"),
]

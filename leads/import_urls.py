from django.urls import path

from leads import import_views

app_name = "leads-import"

urlpatterns = [
    path("", import_views.import_list, name="list"),
    path("upload/", import_views.import_upload, name="upload"),
    path("<int:job_id>/", import_views.import_detail, name="detail"),
    path("<int:job_id>/preview/", import_views.import_preview_view, name="preview"),
    path("<int:job_id>/start/", import_views.import_start_view, name="start"),
    path("<int:job_id>/progress/", import_views.import_progress, name="progress"),
    path("<int:job_id>/cancel/", import_views.import_cancel_view, name="cancel"),
    path("<int:job_id>/rejected.csv", import_views.import_rejects, name="rejects"),
]

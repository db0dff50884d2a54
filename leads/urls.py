from django.urls import path

from leads import views

app_name = "leads"

urlpatterns = [
    path("", views.lead_list, name="lead_list"),
    path("bulk/", views.lead_bulk, name="lead_bulk"),
    path("export.csv", views.lead_export, name="lead_export"),
    path("<int:lead_id>/", views.lead_detail, name="lead_detail"),
    path("<int:lead_id>/activities/", views.lead_activity_log, name="lead_activity_log"),
    path("<int:lead_id>/stage/", views.lead_stage_update, name="lead_stage_update"),
    path("<int:lead_id>/edit/", views.lead_edit, name="lead_edit"),
]

from django.urls import path

from leads.api import views

app_name = "leads-api"

urlpatterns = [
    path("leads/", views.LeadListCreateApi.as_view(), name="lead-list-create"),
    path("leads/<int:lead_id>/", views.LeadDetailApi.as_view(), name="lead-detail"),
    path("leads/<int:lead_id>/stage/", views.LeadStageChangeApi.as_view(), name="lead-stage-change"),
    path("leads/<int:lead_id>/activities/", views.LeadActivityListCreateApi.as_view(), name="lead-activities"),
]

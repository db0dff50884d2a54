from django.urls import path

from routing.api import views

app_name = "routing-api"

urlpatterns = [
    path("queue/", views.QueueListApi.as_view(), name="queue-list"),
    path("queue/next/claim/", views.LeadClaimNextApi.as_view(), name="queue-claim-next"),
    path("queue/<int:lead_id>/claim/", views.LeadClaimApi.as_view(), name="queue-claim"),
    path("routing/dry-run/", views.RoutingDryRunApi.as_view(), name="dry-run"),
    path("routing/leads/<int:lead_id>/assignments/", views.LeadAssignmentListApi.as_view(), name="lead-assignments"),
    path("routing/leads/<int:lead_id>/reassign/", views.LeadReassignApi.as_view(), name="lead-reassign"),
    path("routing/reps/<int:rep_id>/reassign-leads/", views.RepLeadsReassignApi.as_view(), name="rep-leads-reassign"),
]

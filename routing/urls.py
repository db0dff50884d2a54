from django.urls import path

from routing import views

app_name = "routing"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/next/claim/", views.queue_claim, name="queue_claim_next"),
    path("queue/<int:lead_id>/claim/", views.queue_claim, name="queue_claim"),
    path("me/", views.me, name="me"),
    path("me/notifications/read/", views.notifications_read, name="notifications_read"),
    path("me/unread/", views.unread_badge, name="unread_badge"),
    path("rules/", views.rule_list, name="rule_list"),
    path("rules/new/", views.rule_edit, name="rule_create"),
    path("rules/<int:rule_id>/", views.rule_edit, name="rule_edit"),
    path("rules/<int:rule_id>/move/<str:direction>/", views.rule_move, name="rule_move"),
    path("rules/<int:rule_id>/delete/", views.rule_delete, name="rule_delete"),
    path("dry-run/", views.dry_run, name="dry_run"),
    path("reassign/", views.reassign, name="reassign"),
    path("team/", views.team, name="team"),
    path("leads/<int:lead_id>/why/", views.lead_why, name="lead_why"),
]

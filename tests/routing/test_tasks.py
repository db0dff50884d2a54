import datetime

import pytest
from django.core import mail

from core.models import Notification
from routing.models import Assignment, Method
from routing.tasks import assignment_notifications_run_task, rep_open_leads_sweep_task
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory, rule_with_action

pytestmark = pytest.mark.django_db


def test_intake_requests_the_owner_notification_after_commit(key_client, django_capture_on_commit_callbacks):
    # given
    team = TeamFactory()
    rep = RepProfileFactory(team=team)
    rule_with_action(method=Method.ROUND_ROBIN, team=team)
    # when: the on-commit callbacks ask for runs (enrichment, owner notification); a run happens
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        key_client.post("/api/v1/leads/", {"email": "n@x.example"}, format="json")
    handled = assignment_notifications_run_task()  # what the worker runs
    # then
    assert [callback.args[0].name for callback in callbacks] == [
        "leads.tasks.lead_enrichment_run_task",
        "routing.tasks.assignment_notifications_run_task",
    ]
    assert handled == 1
    assert Notification.objects.get().recipient == rep.user
    assert mail.outbox[0].subject.startswith("[LeadOps] New lead assigned to you")


def test_a_notification_run_tells_each_new_owner_once_and_skips_claims_and_history():
    # given: two fresh push assignments, a claim (the rep knows), and one from two hours ago
    now = datetime.datetime.now(datetime.UTC)
    reps = [RepProfileFactory() for _ in range(2)]

    def assignment(rep, method, ago):
        lead = LeadFactory(owner=rep.user)
        return Assignment.objects.create(lead=lead, rep=rep, method=method, reason="next", created_at=now - ago)

    fresh = [assignment(rep, Method.ROUND_ROBIN, datetime.timedelta(seconds=5)) for rep in reps]
    assignment(reps[0], Method.CLAIM, datetime.timedelta(seconds=5))
    assignment(reps[1], Method.ROUND_ROBIN, datetime.timedelta(hours=2))
    # when: two runs (a redelivered message, or a web process and beat at once)
    first, second = assignment_notifications_run_task(), assignment_notifications_run_task()
    # then
    assert (first, second) == (2, 0)
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted(r.user_id for r in reps)
    assert len(mail.outbox) == 2
    assert Assignment.objects.filter(pk__in=[a.pk for a in fresh], notified_at__isnull=False).count() == 2


def test_sweep_task_returns_how_many_reps_changed():
    RepProfileFactory(open_leads=3)
    assert rep_open_leads_sweep_task() == 1

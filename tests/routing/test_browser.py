"""Two reps, two browsers, one queue: one claims, the other sees the lead go or is told it is taken."""

import pytest
from django.test import Client
from django.utils import timezone

from routing.models import QueueEntry
from tests.conftest import SCREENSHOTS
from tests.leads.factories import LeadFactory
from tests.routing.factories import QueueFactory, RepProfileFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in_page(browser, live_server, user):
    client = Client()
    client.force_login(user)
    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}/routing/queue/")
    return page


def test_two_reps_race_for_the_same_leads(browser, live_server):
    from playwright.sync_api import expect

    # given: two leads waiting, two reps looking at the same queue
    queue = QueueFactory()
    ada, grace = RepProfileFactory(), RepProfileFactory()
    first = LeadFactory(first_name="Alan", last_name="Turing", score=90)
    second = LeadFactory(first_name="Edsger", last_name="Dijkstra", score=10)
    now = timezone.now()
    for lead in (first, second):
        QueueEntry.objects.create(lead=lead, queue=queue, score=lead.score, enqueued_at=now, due_at=now)
    page_a = signed_in_page(browser, live_server, ada.user)
    page_b = signed_in_page(browser, live_server, grace.user)
    expect(page_a.locator(f"#queue-row-{first.pk}")).to_be_visible()
    expect(page_b.locator(f"#queue-row-{first.pk}")).to_be_visible()

    # when: A claims the first lead; B just watches
    page_a.locator(f"#queue-row-{first.pk} button.claim").click()
    # then: A has it, and it disappears from B's live list without a reload
    expect(page_a.get_by_role("status")).to_contain_text("Alan Turing is yours")
    expect(page_a.locator(f"#queue-row-{first.pk}")).to_have_count(0)
    expect(page_b.locator(f"#queue-row-{first.pk}")).to_have_count(0, timeout=10_000)

    # when: B claims the second lead while A's page still shows it, and A clicks its stale row
    # A's live refresh is held back, so A still sees the lead B is about to take.
    page_a.route(
        "**/routing/queue/", lambda route: route.abort() if route.request.method == "GET" else route.continue_()
    )
    page_b.locator(f"#queue-row-{second.pk} button.claim").click()
    expect(page_b.get_by_role("status")).to_contain_text("Edsger Dijkstra is yours")
    page_a.locator(f"#queue-row-{second.pk} button.claim").click()
    # then: A is told clearly, and the message outlives the next live refresh
    expect(page_a.get_by_role("alert")).to_contain_text("Someone else claimed this lead first.")
    page_a.unroute("**/routing/queue/")
    page_a.wait_for_timeout(3500)
    expect(page_a.get_by_role("alert")).to_contain_text("Someone else claimed this lead first.")
    expect(page_a.locator(f"#queue-row-{second.pk}")).to_have_count(0)
    SCREENSHOTS.mkdir(exist_ok=True)
    page_a.screenshot(path=str(SCREENSHOTS / "routing-queue-rep-a.png"), full_page=True)
    page_b.screenshot(path=str(SCREENSHOTS / "routing-queue-rep-b.png"), full_page=True)
    assert QueueEntry.objects.filter(claimed_at__isnull=True).count() == 0
    assert {QueueEntry.objects.get(lead=first).claimed_by_id, QueueEntry.objects.get(lead=second).claimed_by_id} == {
        ada.pk,
        grace.pk,
    }

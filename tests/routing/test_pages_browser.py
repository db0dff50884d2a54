"""Routing's panels on the lead page in a real browser: a manager sees the countdown, the Owner
panel and "why this owner", reassigns through htmx, and the header follows.

Screenshots land in tests/_screenshots/ (git-ignored)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from leads.models import Stage
from routing.models import ResponseClock
from routing.services import lead_reassign
from tests.conftest import SCREENSHOTS
from tests.leads.factories import LeadFactory
from tests.routing.factories import RepProfileFactory, TeamFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in_page(browser, live_server, user, viewport):
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return context.new_page()


def test_manager_reassigns_from_the_owner_panel(browser, live_server, manager_user):
    from playwright.sync_api import expect

    # given: a lead routed to Rory with a running first-touch clock, Nina on the same team
    team = TeamFactory(manager=manager_user, name="Closers")
    rory = RepProfileFactory(team=team, user__first_name="Rory", user__last_name="Rep")
    RepProfileFactory(team=team, user__first_name="Nina", user__last_name="Novak")
    lead = LeadFactory(first_name="Ada", last_name="Lovelace", company_name="Analytical Engines", stage=Stage.NEW)
    lead_reassign(lead_id=lead.pk, actor=manager_user, reason="Speaks English", to_rep=rory)
    now = timezone.now()
    ResponseClock.objects.filter(lead=lead).delete()
    ResponseClock.objects.create(
        lead=lead,
        rep=rory,
        started_at=now,
        warn_at=now + timedelta(minutes=4),
        due_at=now + timedelta(minutes=5),
        escalate_at=now + timedelta(minutes=10),
    )
    page = signed_in_page(browser, live_server, manager_user, {"width": 1366, "height": 900})

    # when
    page.goto(f"{live_server.url}/leads/{lead.pk}/")

    # then: the three routing panels, the countdown ticking (its script loaded)
    expect(page.locator("#lead-header")).to_contain_text("First touch due")
    expect(page.locator("#lead-header .sla-countdown")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(page.locator("#reassign-form h2")).to_have_text("Owner")
    expect(page.locator("#assignment-why")).to_contain_text("Speaks English")
    page.screenshot(path=SCREENSHOTS / "routing-lead-page-manager.png", full_page=True)

    # when: reassign to Nina through the panel
    page.select_option("#reassign-form select[name=to_rep]", label="Nina Novak")
    page.fill("#reassign-form input[name=reason]", "Rory is away")
    page.click("#reassign-form button[type=submit]")

    # then: the panel confirms, the header shows the new owner
    expect(page.locator("#reassign-form")).to_contain_text("Reassigned to Nina Novak")
    expect(page.locator("#lead-header")).to_contain_text("Nina Novak")
    expect(page.locator("#lead-timeline")).to_contain_text("Rory is away")
    page.screenshot(path=SCREENSHOTS / "routing-lead-page-reassigned.png", full_page=True)

"""The manager's SLA board (htmx): running clocks with live countdowns, breaches, compliance."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.http import HtmxHttpRequest
from routing.selectors_sla import sla_clock_list_running, sla_compliance, sla_periods, user_can_see_sla_board


@login_required
def sla_board(request: HtmxHttpRequest) -> HttpResponse:
    if not user_can_see_sla_board(request.user):
        raise PermissionDenied
    now = timezone.now()
    periods = sla_periods(now=now)
    context = {
        "now": now,
        **sla_clock_list_running(user=request.user, now=now),
        "compliance": [
            ("Today", sla_compliance(user=request.user, since=periods["today"])),
            ("This week", sla_compliance(user=request.user, since=periods["week"])),
        ],
    }
    if request.htmx.target == "sla-board":
        return render(request, "routing/sla/board.html#sla-board", context)
    return render(request, "routing/sla/board.html", context)

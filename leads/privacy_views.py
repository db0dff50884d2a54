"""Privacy requests for one lead: a page with what is stored, a JSON export, an erasure.
Export needs `leads.export_lead_data`, erasure `leads.erase_lead` (admins hold both)."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import ApplicationError, NotFound
from core.http import HtmxHttpRequest
from leads.models import Lead
from leads.privacy import (
    lead_data_export,
    lead_erase,
    lead_erasure_get,
    lead_privacy_summary,
    privacy_request_list_for_lead,
)
from leads.selectors import lead_get_for_user, user_may_handle_privacy

ERASE_CONFIRMATION = "ERASE"


def _lead_or_404(request: HtmxHttpRequest, lead_id: int) -> Lead:
    if not user_may_handle_privacy(request.user):
        raise PermissionDenied
    try:
        return lead_get_for_user(user=request.user, lead_id=lead_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _page(request: HtmxHttpRequest, lead: Lead, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "lead": lead,
        "summary": lead_privacy_summary(lead=lead),
        "erasure": lead_erasure_get(lead_id=lead.pk),
        "requests": privacy_request_list_for_lead(lead_id=lead.pk)[:20],
        "can_export": request.user.has_perm("leads.export_lead_data"),
        "can_erase": request.user.has_perm("leads.erase_lead"),
        "confirmation_word": ERASE_CONFIRMATION,
        "error": error,
    }
    return render(request, "leads/privacy/privacy_page.html", context, status=status)


@login_required
@require_GET
def privacy_page(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    return _page(request, _lead_or_404(request, lead_id))


@login_required
@require_POST
def privacy_export(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    if not request.user.has_perm("leads.export_lead_data"):
        raise PermissionDenied
    try:
        data = lead_data_export(lead_id=lead.pk, actor=request.user, reference=request.POST.get("reference", ""))
    except ApplicationError as exc:
        return _page(request, lead, error=exc.message, status=exc.status_code)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="lead-{lead.pk}-data.json"'
    return response


@login_required
@require_POST
def privacy_erase(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    if not request.user.has_perm("leads.erase_lead"):
        raise PermissionDenied
    if request.POST.get("confirm", "").strip() != ERASE_CONFIRMATION:
        return _page(request, lead, error=f"Type {ERASE_CONFIRMATION} to confirm the erasure.", status=400)
    try:
        lead_erase(lead_id=lead.pk, actor=request.user, reference=request.POST.get("reference", ""))
    except ApplicationError as exc:
        return _page(request, lead, error=exc.message, status=exc.status_code)
    messages.success(request, f"Lead {lead.pk} has been erased. The erasure is recorded in the audit log.")
    return redirect("leads-privacy:page", lead_id=lead.pk)

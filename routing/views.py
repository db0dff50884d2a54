"""HTML + htmx pages of routing: the rep's queue and own page, the rule editor, dry run, reassignment
(the reassign page, and the lead page's "Owner" panel that routing/pages.py adds there).
Thin: authorise, validate with a form, call one service or selectors, choose the response."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from core.exceptions import ApplicationError, NotFound
from core.http import HtmxHttpRequest
from core.selectors import notification_list_for_user
from leads.models import Lead
from leads.selectors import lead_get_for_user
from leads.services import lead_sample_build
from routing.forms import (
    AvailabilityForm,
    DryRunForm,
    LeadReassignForm,
    ReassignForm,
    RepLeadsReassignForm,
    RuleForm,
)
from routing.pages import REASSIGN_FORM_TEMPLATE
from routing.selectors import (
    assignment_current_for_lead,
    assignment_list_for_lead,
    queue_list_for_rep,
    queue_list_with_counts,
    rep_assignable_list_for_user,
    rep_get_for_user,
    rep_list_for_user,
    rep_status_list_for_user,
    routing_rule_get,
    routing_rule_list,
    user_can_dry_run,
    user_can_edit_rules,
    user_can_reassign,
)
from routing.services import (
    lead_claim,
    lead_claim_next,
    lead_reassign,
    notification_mark_read,
    rep_availability_update,
    rep_leads_reassign,
    routing_dry_run,
    routing_rule_delete,
    routing_rule_move,
    routing_rule_save,
)


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _lead_or_404(request: HtmxHttpRequest, lead_id: int) -> Lead:
    try:
        return lead_get_for_user(user=request.user, lead_id=lead_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


# --- the rep's pull queue ----------------------------------------------------------------------


def _queue_context(request: HtmxHttpRequest, **extra) -> dict:
    rep = rep_get_for_user(user=request.user)
    if rep is None:
        raise PermissionDenied
    return {"rep": rep, "entries": list(queue_list_for_rep(rep=rep)), "now": timezone.now(), **extra}


@login_required
def queue(request: HtmxHttpRequest) -> HttpResponse:
    context = _queue_context(request)
    if request.htmx.target == "queue-table":
        return render(request, "routing/queue.html#queue-table", context)
    return render(request, "routing/queue.html", context)


@require_POST
@login_required
def queue_claim(request: HtmxHttpRequest, lead_id: int | None = None) -> HttpResponse:
    rep = rep_get_for_user(user=request.user)
    if rep is None:
        raise PermissionDenied
    lead, error = None, None
    try:
        lead = lead_claim(rep=rep, lead_id=lead_id) if lead_id else lead_claim_next(rep=rep)
        if lead is None:
            error = "The queue is empty."
    except ApplicationError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, f"{lead} is yours.")
        return redirect("routing:queue")
    # The table, plus the message out of band: the live refresh of the table leaves the message alone.
    response = render(
        request, "routing/queue.html#queue-claim-result", _queue_context(request, claimed=lead, error=error)
    )
    if lead is not None:
        trigger_client_event(response, "lead-claimed", {"lead": lead.pk})
    return response


# --- the rep's own page: availability and notifications -----------------------------------------


@login_required
def me(request: HtmxHttpRequest) -> HttpResponse:
    rep = rep_get_for_user(user=request.user)
    form = None
    if rep is not None:
        initial = {
            "is_available": rep.is_available,
            "out_of_office_from": rep.out_of_office_from,
            "out_of_office_until": rep.out_of_office_until,
            "work_start": rep.work_start,
            "work_end": rep.work_end,
            "timezone": rep.timezone,
        }
        form = AvailabilityForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                rep_availability_update(
                    rep=rep,
                    is_available=data["is_available"],
                    out_of_office_from=data["out_of_office_from"],
                    out_of_office_until=data["out_of_office_until"],
                    work_start=data["work_start"],
                    work_end=data["work_end"],
                    timezone_name=data["timezone"],
                )
            except ApplicationError as exc:
                form.add_error(exc.field, exc.message)
            else:
                messages.success(request, "Saved.")
                return redirect("routing:me")
    context = {"rep": rep, "form": form, "notifications": notification_list_for_user(user=request.user)}
    return render(request, "routing/me.html", context)


@require_POST
@login_required
def notifications_read(request: HtmxHttpRequest) -> HttpResponse:
    notification_mark_read(user=request.user)
    if request.htmx:
        context = {"notifications": notification_list_for_user(user=request.user)}
        response = render(request, "routing/me.html#notification-list", context)
        trigger_client_event(response, "notifications-read")
        return response
    return redirect("routing:me")


@login_required
def unread_badge(request: HtmxHttpRequest) -> HttpResponse:
    return render(request, "routing/partials/unread_badge.html")


# --- rules (marketing ops, admins) ---------------------------------------------------------------


@login_required
def rule_list(request: HtmxHttpRequest) -> HttpResponse:
    _require(user_can_edit_rules(request.user))
    context = {"rules": routing_rule_list(), "queues": queue_list_with_counts()}
    return render(request, "routing/rule_list.html", context)


@login_required
def rule_edit(request: HtmxHttpRequest, rule_id: int | None = None) -> HttpResponse:
    _require(user_can_edit_rules(request.user))
    rule = routing_rule_get(rule_id=rule_id) if rule_id else None
    form = RuleForm(request.POST or None, initial=RuleForm.initial_for(rule) if rule else {"match": "all"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            routing_rule_save(
                rule=rule,
                name=data["name"],
                queue=data["queue"],
                conditions=data["conditions"],
                match=data["match"],
                position=data["position"],
                is_active=data["is_active"],
                split_percent=data["split_percent"] or 0,
                action_a=form.action("A"),
                action_b=form.action("B"),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Rule saved.")
            return redirect("routing:rule_list")
    return render(request, "routing/rule_form.html", {"form": form, "rule": rule})


@require_POST
@login_required
def rule_move(request: HtmxHttpRequest, rule_id: int, direction: str) -> HttpResponse:
    _require(user_can_edit_rules(request.user))
    try:
        routing_rule_move(rule_id=rule_id, direction=direction)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("routing:rule_list")


@require_POST
@login_required
def rule_delete(request: HtmxHttpRequest, rule_id: int) -> HttpResponse:
    _require(user_can_edit_rules(request.user))
    try:
        routing_rule_delete(rule_id=rule_id)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Rule deleted.")
    return redirect("routing:rule_list")


# --- dry run -----------------------------------------------------------------------------------


@login_required
def dry_run(request: HtmxHttpRequest) -> HttpResponse:
    _require(user_can_dry_run(request.user))
    form = DryRunForm(request.POST or None)
    decision, error = None, None
    if request.method == "POST" and form.is_valid():
        try:
            if form.cleaned_data["lead_id"]:
                lead = lead_get_for_user(user=request.user, lead_id=form.cleaned_data["lead_id"])
            else:
                lead = lead_sample_build(fields=form.sample_fields())
            decision = routing_dry_run(lead=lead)
        except ApplicationError as exc:
            error = exc.message
    context = {"form": form, "decision": decision, "error": error}
    if request.htmx.target == "dry-run-result":
        return render(request, "routing/dry_run.html#dry-run-result", context)
    return render(request, "routing/dry_run.html", context)


# --- reassignment (managers) -------------------------------------------------------------------


@login_required
def reassign(request: HtmxHttpRequest) -> HttpResponse:
    _require(user_can_reassign(request.user))
    reps, to_reps = rep_list_for_user(user=request.user), rep_assignable_list_for_user(user=request.user)
    one_submitted = request.method == "POST" and "one-lead_id" in request.POST
    bulk_submitted = request.method == "POST" and "bulk-from_rep" in request.POST
    one = ReassignForm(request.POST if one_submitted else None, to_reps=to_reps, prefix="one")
    bulk = RepLeadsReassignForm(request.POST if bulk_submitted else None, reps=reps, to_reps=to_reps, prefix="bulk")
    if one_submitted and one.is_valid():
        try:
            lead = lead_get_for_user(user=request.user, lead_id=one.cleaned_data["lead_id"])
            assignment = lead_reassign(
                lead_id=lead.pk,
                to_rep=one.cleaned_data["to_rep"],
                actor=request.user,
                reason=one.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            one.add_error(None, exc.message)
        else:
            messages.success(request, f"Lead {lead.pk}: {assignment.rep or assignment.queue} — {assignment.reason}")
            return redirect("routing:reassign")
    if bulk_submitted and bulk.is_valid():
        result = rep_leads_reassign(
            rep=bulk.cleaned_data["from_rep"],
            to_rep=bulk.cleaned_data["to_rep"],
            actor=request.user,
            reason=bulk.cleaned_data["reason"],
        )
        messages.success(request, f"Moved {len(result.assignments)} lead(s).")
        for lead_id, why in result.failed.items():
            messages.error(request, f"Lead {lead_id} stayed: {why}")
        return redirect("routing:reassign")
    return render(request, "routing/reassign.html", {"one": one, "bulk": bulk, "reps": reps})


@require_POST
@login_required
def lead_reassign_view(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    """The lead page's "Owner" panel: htmx gets the panel back (and "lead-reassigned" refreshes the
    header and timeline); without htmx, POST/redirect/GET to the lead page with a message."""
    lead = _lead_or_404(request, lead_id)
    _require(user_can_reassign(request.user))
    form = LeadReassignForm(request.POST, user=request.user)
    error = ""
    if form.is_valid():
        try:
            lead_reassign(
                lead_id=lead.pk,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                to_rep=form.cleaned_data["to_rep"],
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            if not request.htmx:
                messages.success(request, "Lead reassigned.")
                return redirect("leads:lead_detail", lead_id=lead.pk)
            context = {
                "lead": _lead_or_404(request, lead_id),
                "reassign_form": LeadReassignForm(user=request.user),
                "reassign_saved": True,
            }
            return trigger_client_event(render(request, REASSIGN_FORM_TEMPLATE, context), "lead-reassigned")
    if request.htmx:
        context = {"lead": lead, "reassign_form": form, "reassign_error": error}
        return render(request, REASSIGN_FORM_TEMPLATE, context)
    for field, errors in form.errors.items():
        messages.error(request, f"{form[field].label}: {errors[0]}" if field in form.fields else errors[0])
    if error:
        messages.error(request, error)
    return redirect("leads:lead_detail", lead_id=lead.pk)


# --- team (managers) ---------------------------------------------------------------------------


@login_required
def team(request: HtmxHttpRequest) -> HttpResponse:
    """Who can take leads right now, how loaded each rep is, and why a rep is being skipped."""
    _require(user_can_reassign(request.user) or user_can_edit_rules(request.user))
    statuses = rep_status_list_for_user(user=request.user)
    template = "routing/team.html#team-table" if request.htmx.target == "team-table" else "routing/team.html"
    return render(request, template, {"statuses": statuses, "routable": sum(s.routable for s in statuses)})


# --- why this owner ----------------------------------------------------------------------------


@login_required
def lead_why(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    context = {
        "lead": lead,
        "assignment": assignment_current_for_lead(lead_id=lead.pk),
        "history": assignment_list_for_lead(lead_id=lead.pk),
    }
    return render(request, "routing/lead_why.html", context)

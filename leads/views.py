"""HTML + htmx views of the lead workspace: the list and the lead page.

Every view scopes through leads.selectors (a rep only ever reaches their own leads: a lead they
may not see is a 404, in full pages and in partials alike) and writes through one service.
What other apps add to these pages (panels, list filters and columns, bulk actions) comes through
leads.hooks: these views call the registered context functions and include their templates.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from core.exceptions import ApplicationError, NotFound
from core.http import HtmxHttpRequest
from leads.exports import lead_csv_rows
from leads.filters import LeadFilter, lead_list_extensions_filter
from leads.forms import (
    ActivityLogForm,
    BulkActionForm,
    LeadEditForm,
    StageChangeForm,
    owner_choices,
    stage_choices_for,
)
from leads.hooks import (
    PanelPlacement,
    lead_bulk_action_get,
    lead_bulk_actions,
    lead_list_extensions,
    lead_panels,
)
from leads.models import Campaign, Channel, Lead, Source, Stage
from leads.selectors import (
    lead_get_for_user,
    lead_list_for_user,
    lead_stage_history,
    lead_timeline,
    user_may_handle_privacy,
    user_sees_all_leads,
)
from leads.services import activity_log, lead_stage_change, lead_update, leads_bulk_apply

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# A higher ?page= shows this (empty) page: the offset must stay within PostgreSQL's bigint.
MAX_PAGE = 1_000_000
# Counting stops here: an exact COUNT(*) of a filtered million-row table takes 0.3-0.7 s on
# PostgreSQL, a count capped at 10,000 rows takes 1-30 ms for index-backed filters (measured).
COUNT_CAP = 10_000
# ?sort=<key> or ?sort=-<key>; every order ends with the primary key so pages are stable.
SORTS: dict[str, tuple[str, ...]] = {
    "created": ("created_at", "id"),
    "name": ("last_name", "first_name", "id"),
    "company": ("company_name", "id"),
    "stage": ("stage", "id"),
    "score": ("score", "id"),
    "owner": ("owner__first_name", "owner__last_name", "id"),
}
DEFAULT_SORT = "-created"
# (sort key, header, css class); the class hides a column on narrow screens.
LIST_COLUMNS = [
    ("name", "Name", "col-name"),
    ("company", "Company", "col-md"),
    ("stage", "Stage", ""),
    ("score", "Score", "num"),
    ("owner", "Owner", "col-sm"),
    ("", "Source", "col-md"),
    ("created", "Created", "col-sm"),
]


@dataclass(frozen=True)
class Shown:
    """Another app's template as a page includes it (`{% include_extension shown %}`): with the
    page's context plus `context`. `assets`: its <link>/<script> tags, included once per page."""

    name: str
    template: str
    context: dict[str, Any]
    assets: str = ""


@dataclass(frozen=True)
class BulkActionShown:
    """A registered bulk action the user may run, as the bulk bar offers it."""

    name: str
    label: str
    asks_reason: bool  # the bar's shared reason input is shown for it
    fields: Shown | None


def _assets(shown: list[Shown]) -> list[str]:
    return list(dict.fromkeys(item.assets for item in shown if item.assets))


# --- lead list ---------------------------------------------------------------------------------


@dataclass
class LeadPage:
    leads: list[Lead]
    number: int
    per_page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def start(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.leads else 0

    @property
    def end(self) -> int:
        return (self.number - 1) * self.per_page + len(self.leads)


def _int_param(request: HtmxHttpRequest, name: str, default: int) -> int:
    try:
        return max(1, int(request.GET.get(name, default)))
    except (TypeError, ValueError):
        return default


def _sort_key(request: HtmxHttpRequest) -> str:
    sort = request.GET.get("sort", DEFAULT_SORT)
    return sort if sort.lstrip("-") in SORTS else DEFAULT_SORT


def _leads_filtered(request: HtmxHttpRequest) -> tuple[dict[str, list[str]], QuerySet[Lead]]:
    """The leads this user may see, filtered (LeadFilter, then other apps' list filters) and
    sorted as the query string says; and the errors of filter values that could not be read."""
    lead_filter = LeadFilter(request.GET, queryset=lead_list_for_user(user=request.user), request=request)
    leads, extension_errors = lead_list_extensions_filter(queryset=lead_filter.qs, data=request.GET)
    sort = _sort_key(request)
    fields = SORTS[sort.lstrip("-")]
    if sort.startswith("-"):
        fields = tuple(f"-{name}" for name in fields)
    return {**lead_filter.errors, **extension_errors}, leads.order_by(*fields)


def _lead_count(leads: QuerySet[Lead]) -> dict[str, Any]:
    """How many leads match, counting at most COUNT_CAP + 1 rows."""
    count = leads.order_by().values("pk")[: COUNT_CAP + 1].count()
    capped = count > COUNT_CAP
    count = min(count, COUNT_CAP)
    label = f"{count:,}{'+' if capped else ''} lead{'' if count == 1 else 's'}"
    return {"count": count, "count_capped": capped, "count_label": label}


_MORE_FILTERS = ("source", "channel", "campaign", "score_min", "score_max", "created_from", "created_to")


def _bulk_actions(request: HtmxHttpRequest) -> list[BulkActionShown]:
    """The registered bulk actions this user may run, with the fields each adds to the bulk bar."""
    shown = []
    for action in lead_bulk_actions():
        if not request.user.has_perm(action.permission):
            continue
        fields = None
        if action.fields_template:
            context = action.fields_context(request) if action.fields_context else {}
            fields = Shown(name=action.name, template=action.fields_template, context=context)
        shown.append(BulkActionShown(action.name, action.label, "reason" in action.params, fields))
    return shown


def _row_extensions(request: HtmxHttpRequest, leads: list[Lead]) -> list[Shown]:
    """What other apps show under each lead's name (one context per page of rows)."""
    shown = []
    for extension in lead_list_extensions():
        if not (extension.row_template and extension.row_context):
            continue
        context = extension.row_context(request, leads)
        if context is not None:
            shown.append(Shown(extension.name, extension.row_template, context, extension.assets))
    return shown


def _lead_list_context(request: HtmxHttpRequest, *, with_count: bool) -> dict[str, Any]:
    user = request.user
    filter_errors, leads = _leads_filtered(request)
    per_page = _int_param(request, "per_page", DEFAULT_PAGE_SIZE)
    per_page = per_page if per_page in PAGE_SIZES else DEFAULT_PAGE_SIZE
    number = min(_int_param(request, "page", 1), MAX_PAGE)
    offset = (number - 1) * per_page
    rows = list(leads[offset : offset + per_page + 1])  # one extra row says whether a next page exists
    page = LeadPage(leads=rows[:per_page], number=number, per_page=per_page, has_next=len(rows) > per_page)
    sees_all = user_sees_all_leads(user)
    can = {
        "stage": user.has_perm("leads.change_lead_stage"),
        "tag": user.has_perm("leads.change_lead"),
        "export": user.has_perm("leads.export_leads"),
    }
    bulk_actions = _bulk_actions(request)
    more_filters = [*_MORE_FILTERS, *(name for extension in lead_list_extensions() for name in extension.params)]
    context: dict[str, Any] = {
        "filter_errors": filter_errors,
        "page": page,
        "sort": _sort_key(request),
        "per_page_choices": PAGE_SIZES,
        "sees_all": sees_all,
        "can": can,
        "bulk_actions": bulk_actions,
        "can_bulk": can["stage"] or can["tag"] or bool(bulk_actions),
        "row_extensions": _row_extensions(request, page.leads),
        "stages": Stage.choices,
        "columns": [(key, label, cls) for key, label, cls in LIST_COLUMNS if sees_all or key != "owner"],
        "channels": Channel.choices,
        "selected": {name: request.GET.getlist(name) for name in ("stage", "channel", "source", "campaign")},
        "active_filters": sum(
            1 for name, value in request.GET.lists() if name not in {"sort", "page", "per_page"} and any(value)
        ),
        "more_filters_active": any(request.GET.get(name) for name in more_filters),
    }
    if with_count:
        context.update(_lead_count(leads))
    return context


def _lead_list_options(request: HtmxHttpRequest, context: dict[str, Any]) -> None:
    """Choices of the filter bar, other apps' filters and page assets (full page only)."""
    context["sources"] = list(Source.objects.only("id", "name"))
    context["campaigns"] = list(Campaign.objects.only("id", "name"))
    context["owners"] = list(owner_choices()) if context["sees_all"] else []
    extensions = lead_list_extensions()
    for extension in extensions:
        if extension.page_context:
            context.update(extension.page_context(request))
    context["extension_filters"] = [e.filters_template for e in extensions if e.filters_template]
    context["assets"] = _assets(context["row_extensions"])


@login_required
@require_GET
def lead_list(request: HtmxHttpRequest) -> HttpResponse:
    if request.htmx.target == "lead-count":
        # The count arrives after the rows, so typing in the search box never waits for it.
        _, leads = _leads_filtered(request)
        return render(request, "leads/lead_list.html#lead-count", _lead_count(leads))
    is_table = request.htmx.target == "lead-table"
    context = _lead_list_context(request, with_count=not is_table)
    if is_table:
        context["count_deferred"] = True
        return render(request, "leads/lead_list.html#lead-table", context)
    _lead_list_options(request, context)
    return render(request, "leads/lead_list.html", context)


_BULK_PERMISSIONS = {
    "stage": "leads.change_lead_stage",
    "tag": "leads.change_lead",
}


@login_required
@require_POST
def lead_bulk(request: HtmxHttpRequest) -> HttpResponse:
    """Bulk action on the selected rows; the query string carries the list's filter, re-rendered after."""
    form = BulkActionForm(request.POST)
    notice, error = "", ""
    if form.is_valid():
        data = form.cleaned_data
        extension = lead_bulk_action_get(data["action"])
        if not request.user.has_perm(extension.permission if extension else _BULK_PERMISSIONS[data["action"]]):
            raise PermissionDenied
        try:
            result = leads_bulk_apply(
                user=request.user,
                action=data["action"],
                lead_ids=data["lead_ids"],
                to_stage=data.get("to_stage") or "",
                tag=data.get("tag") or "",
                reason=data.get("reason") or "",
                params={name: request.POST.get(name, "") for name in extension.params} if extension else None,
            )
            done, failed = result.done, result.failed
        except ApplicationError as exc:
            error = exc.message
        else:
            notice = f"{done} lead{'s' if done != 1 else ''} updated."
            if failed:
                reasons = sorted(set(failed.values()))
                error = f"{len(failed)} not changed: {reasons[0]}" + (
                    " (and other reasons)" if len(reasons) > 1 else ""
                )
    else:
        error = next(iter(form.errors.values()))[0]
    if not request.htmx:
        if notice:
            messages.success(request, notice)
        if error:
            messages.error(request, error)
        query = request.GET.urlencode()
        return redirect(f"{reverse('leads:lead_list')}{'?' + query if query else ''}")
    context = _lead_list_context(request, with_count=False)
    context.update(count_deferred=True, bulk_notice=notice, bulk_error=error)
    return render(request, "leads/lead_list.html#lead-table", context)


@login_required
@require_GET
def lead_export(request: HtmxHttpRequest) -> StreamingHttpResponse:
    """Every lead of the current filter as CSV, streamed in chunks (flat memory at 100,000+ rows)."""
    if not request.user.has_perm("leads.export_leads"):
        raise PermissionDenied
    _, leads = _leads_filtered(request)
    filename = f"leads-{timezone.localtime():%Y%m%d-%H%M}.csv"
    return StreamingHttpResponse(
        lead_csv_rows(leads=leads),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- lead page ---------------------------------------------------------------------------------

DETAIL_PARTIALS = frozenset({"lead-header", "lead-timeline", "lead-fields", "stage-form", "activity-form"})


def _lead_or_404(request: HtmxHttpRequest, lead_id: int) -> Lead:
    try:
        return lead_get_for_user(user=request.user, lead_id=lead_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _panels(request: HtmxHttpRequest, lead: Lead, placement: PanelPlacement) -> list[Shown]:
    """Other apps' panels at `placement` that this user may see (their context function says)."""
    shown = []
    for panel in lead_panels(placement):
        context = panel.context(request, lead)
        if context is not None:
            shown.append(Shown(panel.name, panel.template, context, panel.assets))
    return shown


def _detail_context(request: HtmxHttpRequest, lead: Lead, partial: str | None = None, **extra: Any) -> dict[str, Any]:
    user = request.user
    context: dict[str, Any] = {
        "lead": lead,
        "can_log": user.has_perm("leads.add_activity"),
        "can_stage": user.has_perm("leads.change_lead_stage"),
        "can_edit": user.has_perm("leads.change_lead"),
        "can_privacy": user_may_handle_privacy(user),
        "activity_form": ActivityLogForm(),
        "stage_form": StageChangeForm(),
        "stage_choices": stage_choices_for(lead),
        **extra,
    }
    if partial in (None, "lead-header"):
        context["fact_panels"] = _panels(request, lead, "facts")
    if partial in (None, "lead-timeline"):
        context["timeline"] = list(lead_timeline(lead=lead))
    if partial is None:
        context["stage_history"] = list(lead_stage_history(lead=lead))
        context["side_panels"] = _panels(request, lead, "side")
        context["assets"] = _assets([*context["fact_panels"], *context["side_panels"]])
    return context


def _detail_render(
    request: HtmxHttpRequest, lead: Lead, partial: str | None, status: int = 200, **extra: Any
) -> HttpResponse:
    template = f"leads/lead_detail.html#{partial}" if partial else "leads/lead_detail.html"
    return render(request, template, _detail_context(request, lead, partial, **extra), status=status)


@login_required
@require_GET
def lead_detail(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    partial = request.htmx.target if request.htmx.target in DETAIL_PARTIALS else None
    return _detail_render(request, lead, partial)


@login_required
@require_POST
def lead_activity_log(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    if not request.user.has_perm("leads.add_activity"):
        raise PermissionDenied
    form = ActivityLogForm(request.POST)
    error = ""
    if form.is_valid():
        note = form.cleaned_data["note"].strip()
        try:
            activity = activity_log(
                lead_id=lead.pk,
                kind=form.cleaned_data["kind"],
                actor=request.user,
                payload={"note": note} if note else {},
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            if not request.htmx:
                messages.success(request, f"{activity.get_kind_display()} logged.")
                return redirect("leads:lead_detail", lead_id=lead.pk)
            response = _detail_render(
                request, lead, "activity-form", activity_form=ActivityLogForm(), activity_saved=activity
            )
            return trigger_client_event(response, "activity-logged")
    partial = "activity-form" if request.htmx else None
    return _detail_render(request, lead, partial, activity_form=form, activity_error=error)


@login_required
@require_POST
def lead_stage_update(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    if not request.user.has_perm("leads.change_lead_stage"):
        raise PermissionDenied
    form = StageChangeForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            lead_stage_change(
                lead_id=lead.pk,
                to_stage=form.cleaned_data["to_stage"],
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            lead = _lead_or_404(request, lead_id)
            if not request.htmx:
                messages.success(request, f"Moved to {lead.get_stage_display()}.")
                return redirect("leads:lead_detail", lead_id=lead.pk)
            response = _detail_render(request, lead, "stage-form", stage_saved=True)
            return trigger_client_event(response, "lead-stage-changed")
    partial = "stage-form" if request.htmx else None
    return _detail_render(request, lead, partial, stage_form=form, stage_error=error)


@login_required
@require_http_methods(["GET", "POST"])
def lead_edit(request: HtmxHttpRequest, lead_id: int) -> HttpResponse:
    lead = _lead_or_404(request, lead_id)
    if not request.user.has_perm("leads.change_lead"):
        raise PermissionDenied
    partial = "lead-fields" if request.htmx else None
    if request.method == "GET":
        return _detail_render(request, lead, partial, edit_form=LeadEditForm(instance=lead))
    form = LeadEditForm(request.POST, instance=Lead(pk=lead.pk))
    if form.is_valid():
        try:
            lead_update(lead_id=lead.pk, actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            lead = _lead_or_404(request, lead_id)
            if not request.htmx:
                messages.success(request, "Lead saved.")
                return redirect("leads:lead_detail", lead_id=lead.pk)
            response = _detail_render(request, lead, partial, fields_saved=True)
            return trigger_client_event(response, "lead-updated")
    return _detail_render(request, lead, partial, edit_form=form)

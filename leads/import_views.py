"""CSV import pages: upload, map columns with a live preview, start, follow the progress, cancel,
download the rejected rows. Everything needs `leads.import_leads`."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import ApplicationError, NotFound
from core.http import HtmxHttpRequest
from leads.import_forms import ImportStartForm, ImportUploadForm
from leads.imports import (
    CUSTOM_PREFIX,
    LEAD_FIELD_TARGETS,
    TARGET_CREATED_AT,
    TARGET_OUTCOME,
    custom_target,
    import_cancel,
    import_job_create,
    import_job_get,
    import_job_list,
    import_mapping_validate,
    import_preview,
    import_rejects_csv_lines,
    import_start,
)
from leads.models import ImportJob, ImportStatus

import_required = permission_required("leads.import_leads", raise_exception=True)


def _job_or_404(job_id: int) -> ImportJob:
    try:
        return import_job_get(job_id=job_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


def _mapping_from_post(job: ImportJob, data) -> dict[str, str]:
    """`map-<index>` fields: a lead field, "custom" (a custom field named after the column), "outcome",
    "created_at" or "" (ignore)."""
    mapping = {}
    for index, header in enumerate(job.headers):
        choice = data.get(f"map-{index}", "")
        mapping[header] = custom_target(header) if choice == "custom" else choice
    return mapping


def _mapping_rows(job: ImportJob, mapping: dict[str, str]) -> list[dict]:
    rows = []
    for index, header in enumerate(job.headers):
        target = mapping.get(header, "")
        rows.append(
            {
                "index": index,
                "header": header,
                "choice": "custom" if target.startswith(CUSTOM_PREFIX) else target,
                "custom_name": custom_target(header).removeprefix(CUSTOM_PREFIX),
            }
        )
    return rows


def _detail_context(job: ImportJob, mapping: dict[str, str], **extra) -> dict:
    return {
        "job": job,
        "mapping_rows": _mapping_rows(job, mapping),
        "field_targets": LEAD_FIELD_TARGETS,
        "target_outcome": TARGET_OUTCOME,
        "target_created_at": TARGET_CREATED_AT,
        **extra,
    }


def _preview_context(job: ImportJob, mapping: dict[str, str]) -> dict:
    try:
        import_mapping_validate(headers=job.headers, mapping=mapping)
        mapping_error = ""
    except ApplicationError as exc:
        mapping_error = exc.message
    rows = import_preview(job=job, mapping=mapping)
    labels = dict(LEAD_FIELD_TARGETS)
    keys = sorted({key for row in rows for key in row.values}, key=lambda k: (k.startswith(CUSTOM_PREFIX), k))
    columns = [(key, labels.get(key) or key.removeprefix(CUSTOM_PREFIX)) for key in keys]
    return {
        "preview_rows": rows,
        "preview_columns": columns,
        "mapping_error": mapping_error,
        "preview_valid": sum(1 for r in rows if not r.error),
        "has_outcome": TARGET_OUTCOME in mapping.values(),
    }


@login_required
@import_required
@require_GET
def import_list(request: HtmxHttpRequest) -> HttpResponse:
    jobs = import_job_list()[:20]
    return render(request, "leads/import/import_list.html", {"jobs": jobs, "form": ImportUploadForm()})


@login_required
@import_required
@require_POST
def import_upload(request: HtmxHttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            job = import_job_create(
                user=request.user,
                upload=form.cleaned_data["file"],
                source=form.cleaned_data["source"],
                new_source_name=form.cleaned_data["new_source"],
            )
        except ApplicationError as exc:
            form.add_error("file", exc.message)
        else:
            return redirect("leads-import:detail", job_id=job.pk)
    jobs = import_job_list()[:20]
    return render(request, "leads/import/import_list.html", {"jobs": jobs, "form": form}, status=400)


@login_required
@import_required
@require_GET
def import_detail(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(job_id)
    if job.status != ImportStatus.DRAFT:
        return render(request, "leads/import/import_progress.html", _progress_context(job))
    context = _detail_context(job, job.mapping, start_form=ImportStartForm(initial={"campaign": job.campaign_id}))
    context.update(_preview_context(job, job.mapping))
    return render(request, "leads/import/import_mapping.html", context)


@login_required
@import_required
@require_POST
def import_preview_view(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    """The mapping form changed: the preview table again, under the new mapping."""
    job = _job_or_404(job_id)
    mapping = _mapping_from_post(job, request.POST)
    if not request.htmx:
        return redirect("leads-import:detail", job_id=job.pk)
    return render(
        request, "leads/import/import_mapping.html#import-preview", {"job": job, **_preview_context(job, mapping)}
    )


@login_required
@import_required
@require_POST
def import_start_view(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(job_id)
    mapping = _mapping_from_post(job, request.POST)
    form = ImportStartForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            job = import_start(
                job_id=job.pk, mapping=mapping, source=job.source, campaign=form.cleaned_data["campaign"]
            )
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("leads-import:detail", job_id=job.pk)
    context = _detail_context(job, mapping, start_form=form, start_error=error)
    context.update(_preview_context(job, mapping))
    return render(request, "leads/import/import_mapping.html", context, status=400)


@login_required
@import_required
@require_GET
def import_progress(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    job = _job_or_404(job_id)
    if not request.htmx:
        return redirect("leads-import:detail", job_id=job.pk)
    return render(request, "leads/import/import_progress.html#import-progress", _progress_context(job))


@login_required
@import_required
@require_POST
def import_cancel_view(request: HtmxHttpRequest, job_id: int) -> HttpResponse:
    job = import_cancel(job_id=_job_or_404(job_id).pk)
    if not request.htmx:
        messages.success(request, "The import is being cancelled." if not job.is_finished else "Import cancelled.")
        return redirect("leads-import:detail", job_id=job.pk)
    job = import_job_get(job_id=job.pk)
    return render(request, "leads/import/import_progress.html#import-progress", _progress_context(job))


@login_required
@import_required
@require_GET
def import_rejects(request: HtmxHttpRequest, job_id: int) -> StreamingHttpResponse:
    job = _job_or_404(job_id)
    response = StreamingHttpResponse(import_rejects_csv_lines(job=job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
    return response


def _progress_context(job) -> dict:
    return {"job": job, "retention_days": settings.LEADOPS_IMPORT_RETENTION_DAYS}

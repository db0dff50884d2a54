"""What reps change about themselves, and notifications of new owners."""

from datetime import date, time, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.exceptions import ApplicationError
from core.models import Notification
from routing.models import Assignment, Method, RepProfile


@transaction.atomic
def rep_availability_update(
    *,
    rep: RepProfile,
    is_available: bool,
    out_of_office_from: date | None = None,
    out_of_office_until: date | None = None,
    work_start: time | None = None,
    work_end: time | None = None,
    timezone_name: str | None = None,
) -> RepProfile:
    if out_of_office_from and out_of_office_until and out_of_office_until < out_of_office_from:
        raise ApplicationError("Out of office ends before it starts.", field="out_of_office_until")
    rep.is_available = is_available
    rep.out_of_office_from, rep.out_of_office_until = out_of_office_from, out_of_office_until
    fields = ["is_available", "out_of_office_from", "out_of_office_until", "updated_at"]
    if work_start is not None and work_end is not None:
        rep.work_start, rep.work_end = work_start, work_end
        fields += ["work_start", "work_end"]
    if timezone_name:
        rep.timezone = timezone_name
        fields.append("timezone")
    rep.save(update_fields=fields)
    return rep


def lead_url(*, lead_id: int) -> str:
    """The lead page (leads app) when it is there, else routing's "why this owner" page."""
    try:
        return reverse("leads:lead_detail", kwargs={"lead_id": lead_id})
    except NoReverseMatch:
        return reverse("routing:lead_why", kwargs={"lead_id": lead_id})


# Owners are told of new leads in runs (one per second per web process, and beat's safety net);
# an assignment older than this that was never announced is history (e.g. demo data), not news.
NOTIFY_HORIZON = timedelta(hours=1)


def assignment_notifications_send(*, batch_size: int = 200) -> int:
    """Tell the owners of recent assignments not announced yet; returns how many were handled
    (a whole batch: call again). Concurrent runs are safe: assignment_notify is idempotent."""
    since = timezone.now() - NOTIFY_HORIZON
    pending = list(
        Assignment.objects.filter(notified_at__isnull=True, rep__isnull=False, created_at__gte=since)
        .exclude(method=Method.CLAIM)
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    for assignment_id in pending:
        assignment_notify(assignment_id=assignment_id)
    return len(pending)


def assignment_notify(*, assignment_id: int) -> Notification | None:
    """Tell a new owner about their lead: an in-app notification and an email. Idempotent: the
    conditional UPDATE on notified_at makes a redelivered task a no-op."""
    with transaction.atomic():
        if not Assignment.objects.filter(pk=assignment_id, notified_at__isnull=True, rep__isnull=False).update(
            notified_at=timezone.now()
        ):
            return None
        assignment = Assignment.objects.select_related("lead", "rep__user").get(pk=assignment_id)
        lead, user = assignment.lead, assignment.rep.user
        notification = Notification.objects.create(
            recipient=user,
            title=f"New lead: {lead}",
            body=assignment.reason,
            url=lead_url(lead_id=lead.pk),
        )
    if user.email:  # outside the transaction: no email sends while holding anything
        send_mail(
            subject=f"[LeadOps] New lead assigned to you: {lead}",
            message=f"{lead} ({lead.company_name or lead.email}) is yours.\n\nWhy: {assignment.reason}\n",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
            fail_silently=True,
        )
    return notification


def notification_mark_read(*, user, notification_id: int | None = None) -> int:
    """Mark one notification (or all of the user's) as read; returns how many changed."""
    notifications = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        notifications = notifications.filter(pk=notification_id)
    return notifications.update(read_at=timezone.now())

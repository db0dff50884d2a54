"""What reps change about themselves, and notifications of new owners."""

import logging
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.exceptions import ApplicationError
from core.models import Notification
from routing.models import Assignment, Method, RepProfile

logger = logging.getLogger(__name__)


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


def fit_to_field(text: str, *, model: type, field_name: str) -> str:
    """`text` cut to the field's max_length, ending in an ellipsis when it was cut."""
    limit = model._meta.get_field(field_name).max_length
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def notification_title(text: str) -> str:
    """A title that fits Notification.title (a lead's name alone may be 200 characters)."""
    return fit_to_field(text, model=Notification, field_name="title")


def _one_line(text: str, *, limit: int = 200) -> str:
    """An email subject: no line breaks (Django refuses them in headers), bounded."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# Owners are told of new leads in runs (one per second per web process, and beat's safety net);
# an assignment older than this that was never announced is history (e.g. demo data), not news.
NOTIFY_HORIZON = timedelta(hours=1)
# A notification that fails is recorded on its assignment and tried again after a back-off that
# doubles from NOTIFY_RETRY_FIRST up to NOTIFY_RETRY_MAX; after NOTIFY_MAX_ATTEMPTS it is given up
# (notify_retry_at NULL) and stays visible in the admin's assignment list ("Notification: failed").
NOTIFY_RETRY_FIRST = timedelta(minutes=1)
NOTIFY_RETRY_MAX = timedelta(hours=1)
NOTIFY_MAX_ATTEMPTS = 8


def notify_retry_delay(*, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure (1, 2, 4, ... minutes, at most an hour)."""
    return min(NOTIFY_RETRY_FIRST * 2 ** (attempts - 1), NOTIFY_RETRY_MAX)


def assignment_notifications_send(*, batch_size: int = 200, now: datetime | None = None) -> int:
    """Tell the owners of recent assignments not announced yet, then retry failed ones that are due;
    returns how many were handled (a whole batch: call again). An assignment that fails is recorded
    (attempts, error, next retry) and the run goes on: one bad item never blocks the others.
    Concurrent runs are safe: assignment_notify is idempotent."""
    now = now or timezone.now()
    unnotified = Assignment.objects.filter(notified_at__isnull=True, rep__isnull=False).exclude(method=Method.CLAIM)
    pending = list(
        unnotified.filter(notify_attempts=0, created_at__gte=now - NOTIFY_HORIZON)
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    if len(pending) < batch_size:  # retries after the fresh ones: a failing item never goes first
        pending += (
            unnotified.filter(notify_retry_at__lte=now)
            .order_by("notify_retry_at")
            .values_list("pk", flat=True)[: batch_size - len(pending)]
        )
    for assignment_id in pending:
        try:
            assignment_notify(assignment_id=assignment_id)
        except Exception as exc:  # this item only: record it, go on with the others
            logger.exception("Notifying the owner of assignment %s failed", assignment_id)
            assignment_notify_failure_record(assignment_id=assignment_id, error=exc, now=now)
    return len(pending)


def assignment_notify_failure_record(*, assignment_id: int, error: BaseException, now: datetime | None = None) -> bool:
    """Count a failed attempt on the assignment and schedule the next one (none after the last).
    A conditional UPDATE on the attempts read: a concurrent run that recorded first wins."""
    now = now or timezone.now()
    row = (
        Assignment.objects.filter(pk=assignment_id, notified_at__isnull=True)
        .values_list("notify_attempts", flat=True)
        .first()
    )
    if row is None:
        return False
    attempts = row + 1
    retry_at = now + notify_retry_delay(attempts=attempts) if attempts < NOTIFY_MAX_ATTEMPTS else None
    message = f"{type(error).__name__}: {error}"
    return bool(
        Assignment.objects.filter(pk=assignment_id, notified_at__isnull=True, notify_attempts=row).update(
            notify_attempts=attempts, notify_error=message[:2000], notify_retry_at=retry_at
        )
    )


def assignment_notify(*, assignment_id: int) -> Notification | None:
    """Tell a new owner about their lead: an in-app notification and an email. Idempotent: the
    conditional UPDATE on notified_at makes a redelivered task a no-op. Raises when the in-app
    notification cannot be written (nothing is marked); a failed email is logged on the assignment."""
    with transaction.atomic():
        if not Assignment.objects.filter(pk=assignment_id, notified_at__isnull=True, rep__isnull=False).update(
            notified_at=timezone.now(), notify_retry_at=None
        ):
            return None
        assignment = Assignment.objects.select_related("lead", "rep__user").get(pk=assignment_id)
        lead, user = assignment.lead, assignment.rep.user
        notification = Notification.objects.create(
            recipient=user,
            title=notification_title(f"New lead: {lead}"),
            body=assignment.reason,
            url=lead_url(lead_id=lead.pk),
        )
    if user.email:  # outside the transaction: no email sends while holding anything
        try:
            send_mail(
                subject=_one_line(f"[LeadOps] New lead assigned to you: {lead}"),
                message=f"{lead} ({lead.company_name or lead.email}) is yours.\n\nWhy: {assignment.reason}\n",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[user.email],
                fail_silently=True,
            )
        except Exception as exc:  # the in-app notification is there; the email is not retried
            logger.exception("Emailing the owner of assignment %s failed", assignment_id)
            Assignment.objects.filter(pk=assignment_id).update(notify_error=f"email not sent: {exc}"[:2000])
    return notification


def notification_mark_read(*, user, notification_id: int | None = None) -> int:
    """Mark one notification (or all of the user's) as read; returns how many changed."""
    notifications = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        notifications = notifications.filter(pk=notification_id)
    return notifications.update(read_at=timezone.now())

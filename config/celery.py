import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("leadops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class FolderCreatingScheduler(PersistentScheduler):
    """celery beat's file scheduler, which first creates the folder of its schedule file
    (CELERY_BEAT_SCHEDULE_FILENAME or `-s`): by default under var/, which a fresh checkout does
    not have (CELERY_BEAT_SCHEDULER names this class)."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()

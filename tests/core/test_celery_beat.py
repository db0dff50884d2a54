"""`celery beat` starts on a fresh checkout: its schedule file's folder (var/ by default, not in
git) is created when the scheduler opens it, wherever the setting or `-s` puts it."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def beat_runs(tmp_path: Path, args: list[str], extra_env: dict[str, str]) -> tuple[bool, str]:
    log_path = tmp_path / "beat.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_BROKER_URL": "memory://",  # beat only needs to start, not to deliver
        **extra_env,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while "beat: Starting" not in log_path.read_text() and process.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(1.5)  # the scheduler opens its file right after "Starting"
        alive = process.poll() is None
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    return alive, log_path.read_text()


@pytest.mark.parametrize("how", ["-s", "setting"])
def test_beat_starts_when_the_schedule_folder_does_not_exist(tmp_path, how):
    # given: a schedule file in a folder that does not exist yet (a fresh checkout's var/)
    schedule = tmp_path / "fresh-checkout" / "var" / "celerybeat-schedule"
    args = ["-s", str(schedule)] if how == "-s" else []
    extra_env = {"DJANGO_CELERY_BEAT_SCHEDULE_FILENAME": str(schedule)} if how == "setting" else {}

    # when
    alive, log = beat_runs(tmp_path, args, extra_env)

    # then: beat is still running and its schedule is on disk
    assert alive, log[-3000:]
    assert "FileNotFoundError" not in log
    assert list(schedule.parent.glob("celerybeat-schedule*")), log[-3000:]

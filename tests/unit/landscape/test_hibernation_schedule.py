"""The simulated hibernation schedules: cron matching and which boundary wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from landscape.gardener.hibernation import Cron, CronError, desired_in


def test_cron_fields_lists_ranges_steps_and_weekdays() -> None:
    c = Cron.parse("0,30 8-17/3 * * 1-5")
    monday = datetime(2026, 11, 30, 11, 30, tzinfo=UTC)
    assert c.matches(monday)
    assert not c.matches(monday.replace(hour=12))  # 8, 11, 14, 17 only
    assert not c.matches(monday + timedelta(days=5))  # Saturday
    assert Cron.parse("0 0 * * 7").matches(datetime(2026, 11, 29, tzinfo=UTC))  # 7 is Sunday
    for bad in ("* * * *", "61 * * * *", "a * * * *"):
        with pytest.raises(CronError):
            Cron.parse(bad)


def test_latest_boundary_wins_in_location() -> None:
    now = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)  # 20:00 in Berlin
    sch = [{"start": "00 20 * * *", "end": "00 06 * * *", "location": "Europe/Berlin"}]
    assert desired_in(sch, now - timedelta(minutes=1), now) is True
    assert desired_in(sch, now - timedelta(hours=2), now - timedelta(hours=1)) is None
    wake = now.replace(hour=5)  # 06:00 Berlin
    assert desired_in(sch, wake - timedelta(minutes=1), wake) is False
    assert desired_in(sch, wake - timedelta(hours=15), wake) is False  # start then end: end is later

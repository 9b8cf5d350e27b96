"""Calendars (allow/deny windows, time zones, recurrence) and flagd flag files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.konfidence import allowed, apply_flags, next_allowed_instant, restore_flags
from definitions.promotion import Calendar, Flags
from definitions.promotion_runs import FlagApply, FlagRestore

BUSINESS = Calendar.model_validate({
    "timeZone": "Europe/Berlin",
    "allow": [{"days": ["MO", "TU", "WE", "TH", "FR"], "start": "08:00", "end": "18:00"}],
    "deny": [{"from": "2026-12-20T00:00:00Z", "until": "2027-01-06T00:00:00Z", "note": "year-end freeze"}],
})


def test_allow_window_in_local_time() -> None:
    # Friday 2026-11-20 16:59 UTC is 17:59 in Berlin (allowed); 17:00 UTC is 18:00 (closed)
    assert allowed(BUSINESS, datetime(2026, 11, 20, 16, 59, tzinfo=UTC))[0]
    ok, why = allowed(BUSINESS, datetime(2026, 11, 20, 17, 0, tzinfo=UTC))
    assert not ok and why == "outside every allow window"


def test_next_allowed_skips_the_weekend() -> None:
    at, why = next_allowed_instant(BUSINESS, datetime(2026, 11, 20, 17, 30, tzinfo=UTC))
    assert at == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday 08:00 Berlin
    assert why


def test_deny_window_wins_and_is_named() -> None:
    ok, why = allowed(BUSINESS, datetime(2026, 12, 22, 10, 0, tzinfo=UTC))
    assert not ok and "year-end freeze" in why
    at, _ = next_allowed_instant(BUSINESS, datetime(2026, 12, 22, 10, 0, tzinfo=UTC))
    assert at == datetime(2027, 1, 6, 7, 0, tzinfo=UTC)  # Wednesday after the freeze, 08:00 Berlin


def test_window_across_midnight() -> None:
    night = Calendar.model_validate({"timeZone": "UTC", "allow": [{"days": ["SA"], "start": "22:00", "end": "02:00"}]})
    assert allowed(night, datetime(2026, 11, 21, 23, 0, tzinfo=UTC))[0]  # Saturday 23:00
    assert allowed(night, datetime(2026, 11, 22, 1, 0, tzinfo=UTC))[0]  # Sunday 01:00 belongs to Saturday
    assert not allowed(night, datetime(2026, 11, 22, 23, 0, tzinfo=UTC))[0]


async def test_flagd_file_written_and_restored(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {
        "other": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}))
    before = path.read_text()
    flags = Flags.model_validate({"path": str(path), "actions": [
        {"flag": "new-ui", "defaultVariant": "on", "variants": {"on": True, "off": False}}]})
    env = ActivityEnvironment()
    res = await env.run(apply_flags, FlagApply(flags=flags, ring="canary", version="1.2.0"))
    data = json.loads(path.read_text())
    assert res.changed == ["new-ui"]
    assert data["flags"]["new-ui"]["defaultVariant"] == "on" and data["flags"]["new-ui"]["state"] == "ENABLED"
    assert data["flags"]["other"]["defaultVariant"] == "a"  # other flags untouched
    await env.run(restore_flags, FlagRestore(path=res.path, before=res.before))
    assert json.loads(path.read_text()) == json.loads(before)


async def test_flag_action_with_unknown_variant_is_refused(tmp_path: Path) -> None:
    flags = Flags.model_validate({"path": str(tmp_path / "f.json"), "actions": [{"flag": "x", "defaultVariant": "on"}]})
    with pytest.raises(Exception, match="has no variant 'on'"):
        await ActivityEnvironment().run(apply_flags, FlagApply(flags=flags, ring="dev", version="1"))


def _evaluate_with_flagd(path: Path, flag: str) -> object:
    """Resolve a flag the way a workload would: OpenFeature with flagd's in-process file resolver."""
    import time

    from openfeature import api
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    api.set_provider(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=str(path)))
    try:
        for _ in range(100):  # the file resolver loads the file on its own thread
            details = api.get_client().get_boolean_details(flag, False)
            if details.error_code is None:
                break
            time.sleep(0.05)
        return details
    finally:
        api.shutdown()


async def test_flag_file_is_served_by_flagds_provider(tmp_path: Path) -> None:
    pytest.importorskip("openfeature.contrib.provider.flagd", reason="openfeature-provider-flagd (dev extra) missing")
    path = tmp_path / "flags.json"
    flags = Flags.model_validate({"path": str(path), "actions": [
        {"flag": "new-ui", "defaultVariant": "on", "variants": {"on": True, "off": False}}]})
    await ActivityEnvironment().run(apply_flags, FlagApply(flags=flags, ring="canary", version="1.2.0"))
    details = _evaluate_with_flagd(path, "new-ui")
    assert details.value is True and details.variant == "on" and details.error_code is None  # type: ignore[attr-defined]
    assert details.flag_metadata["apeiroVersion"] == "1.2.0"  # type: ignore[attr-defined]

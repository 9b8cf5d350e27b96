"""The simulated garden's Gardener rules at their boundaries (figures from Gardener's own code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from landscape.gardener import rules

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def ts(days: float) -> str:
    return (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"version": "1.30.0"}, "supported"),
        ({"version": "1.30.0", "classification": "preview"}, "preview"),
        ({"version": "1.30.0", "classification": "deprecated", "expirationDate": ts(-1)}, "expired"),
        ({"version": "1.30.0", "classification": "deprecated", "expirationDate": ts(1)}, "deprecated"),
        ({"version": "1.30.0", "expirationDate": ts(-1)}, "expired"),
        ({"version": "1.30.0", "lifecycle": [{"classification": "preview", "startTime": ts(1)}]}, "unavailable"),
        (
            {
                "version": "1.30.0",
                "lifecycle": [
                    {"classification": "preview"},
                    {"classification": "supported", "startTime": ts(-2)},
                    {"classification": "deprecated", "startTime": ts(3)},
                ],
            },
            "supported",
        ),
    ],
)
def test_classification_legacy_and_lifecycle(entry: dict[str, object], expected: str) -> None:
    assert rules.classification(entry, NOW) == expected


def test_active_excludes_expired_and_unavailable() -> None:
    assert rules.is_active({"version": "1.0.0", "classification": "preview"}, NOW)
    assert not rules.is_active(
        {"version": "1.0.0", "lifecycle": [{"classification": "preview", "startTime": ts(1)}]}, NOW
    )
    assert not rules.is_active({"version": "1.0.0", "expirationDate": ts(-1)}, NOW)


@pytest.mark.parametrize(
    ("cp", "worker", "problem"),
    [
        ("1.31.4", "1.31.4", None),
        ("1.31.4", "1.28.0", None),  # three minors behind: allowed
        ("1.32.0", "1.28.15", "three minor"),  # four behind (1.28.15 + 4 minors = 1.32.0)
        ("1.31.9", "1.28.15", None),
        ("1.31.4", "1.31.5", "must not be higher"),
    ],
)
def test_worker_skew(cp: str, worker: str, problem: str | None) -> None:
    got = rules.worker_skew_problem(cp, worker)
    assert (got is None) if problem is None else (got is not None and problem in got)


def test_control_plane_updates_one_minor_at_a_time() -> None:
    assert rules.kubernetes_update_problem("1.31.0", "1.30.8", skip_minor_allowed=False) is None
    assert "skip a minor" in str(rules.kubernetes_update_problem("1.32.0", "1.30.8", skip_minor_allowed=False))
    assert "downgrade" in str(rules.kubernetes_update_problem("1.30.2", "1.30.8", skip_minor_allowed=False))
    # worker pools with a rolling update strategy may skip minors, never go down
    assert rules.kubernetes_update_problem("1.33.0", "1.30.8", skip_minor_allowed=True) is None


def test_defaulting_takes_highest_supported() -> None:
    versions = [
        {"version": "1.32.0", "classification": "preview"},
        {"version": "1.31.4"},
        {"version": "1.31.2"},
        {"version": "1.30.9", "classification": "deprecated"},
    ]
    assert rules.default_kubernetes_version(versions, "", NOW) == "1.31.4"
    assert rules.default_kubernetes_version(versions, "1.31", NOW) == "1.31.4"
    assert rules.default_kubernetes_version(versions, "1.30.1", NOW) == "1.30.1"  # full versions are kept
    with pytest.raises(rules.RuleError):
        rules.default_kubernetes_version(versions, "1.30", NOW)  # only a deprecated one


def test_default_machine_image_prefers_not_deprecated() -> None:
    images = [
        {
            "name": "gardenlinux",
            "versions": [
                {"version": "1877.3.0", "classification": "preview"},
                {"version": "1592.9.0", "classification": "deprecated", "expirationDate": ts(10)},
                {"version": "1443.3.0"},
            ],
        }
    ]
    assert rules.default_machine_image(images, None, NOW) == {"name": "gardenlinux", "version": "1443.3.0"}


@pytest.mark.parametrize(
    ("begin", "end", "inside", "outside"),
    [
        ("220000+0000", "230000+0000", "22:30", "21:59"),
        ("230000+0000", "030000+0000", "01:00", "04:00"),  # over midnight
        ("230000+0100", "010000+0100", "23:30", "00:30"),  # zone converted to UTC: 22:00-00:00
    ],
)
def test_time_window(begin: str, end: str, inside: str, outside: str) -> None:
    window = rules.TimeWindow.parse(begin, end)

    def at(hhmm: str) -> datetime:
        h, m = map(int, hhmm.split(":"))
        return NOW.replace(hour=h, minute=m)

    assert window.contains(at(inside)) and window.seconds_until_begin(at(inside)) == 0
    assert not window.contains(at(outside)) and 0 < window.seconds_until_begin(at(outside)) < 86400


def test_window_limits() -> None:
    assert rules.window_problems("220000+0000", "230000+0000") == []
    assert "greater than 6h0m0s" in rules.window_problems("000000+0000", "235959+0000")[0][2]
    assert "smaller than 30m0s" in rules.window_problems("220000+0000", "221500+0000")[0][2]
    assert "could not parse" in rules.window_problems("25:00", "230000+0000")[0][2]

"""A pipeline run's default workflow id stays unique when hundreds start in the same second."""

from __future__ import annotations

import re

from definitions.runstart import default_workflow_id


def test_ids_started_in_one_second_do_not_collide() -> None:
    ids = [default_workflow_id("edge-site") for _ in range(1000)]
    assert len(set(ids)) == len(ids)  # 4 hex digits: ~8 repeats expected; 8: a 1-in-8,000 chance of one
    assert all(re.fullmatch(r"edge-site-\d{8}-\d{6}-[0-9a-f]{8}", i) for i in ids)

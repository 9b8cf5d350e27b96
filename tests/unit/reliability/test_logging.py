"""Structured logs: JSON lines carrying workflow and run ids when logged inside an activity."""

from __future__ import annotations

import io
import json
import logging

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from workers.observability import JsonFormatter, TemporalContextFilter


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TemporalContextFilter())
    log = logging.getLogger("apeiro.test.structured")
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log, stream


def test_plain_logger_inside_an_activity_carries_ids() -> None:
    log, stream = capture()

    @activity.defn
    def act() -> None:
        log.info("copying %d blobs", 3)

    ActivityEnvironment().run(act)
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "copying 3 blobs"
    assert record["workflow_id"] == "test" and record["run_id"] == "test-run"
    assert record["activity_type"] == "unknown" and record["attempt"] == 1


def test_outside_temporal_only_plain_fields() -> None:
    log, stream = capture()
    log.warning("standalone")
    record = json.loads(stream.getvalue())
    assert record["level"] == "warning" and "workflow_id" not in record

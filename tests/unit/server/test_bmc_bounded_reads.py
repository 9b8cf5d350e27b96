"""BMC answers are read with caps: a Redfish service answering JSON nested 100,000 deep or an endless
body fails the activity non-retryably (BmcAnswerRejected) instead of a retried RecursionError or a
worker growing without bound."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from temporalio.exceptions import ApplicationError

from activities.redfish.activities import RedfishActivities
from definitions.server import BmcConnection
from tests.hostile_http import DEEP_JSON, hostile_server


@pytest.fixture(params=["deep", "endless"])
def bmc(request: pytest.FixtureRequest) -> Iterator[str]:
    deep = request.param == "deep"
    with hostile_server(lambda path: DEEP_JSON if deep else None, b" " * 65_000, protocol_version="HTTP/1.1") as url:
        yield url


def test_hostile_bmc_answer_is_rejected_non_retryably(bmc: str) -> None:
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        RedfishActivities().list_systems(BmcConnection(url=bmc, timeout_s=20))
    assert caught.value.type == "BmcAnswerRejected", caught.value
    assert caught.value.non_retryable
    assert "127.0.0.1" in caught.value.message
    assert time.monotonic() - started < 20

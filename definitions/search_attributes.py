"""Custom search attributes the engine sets, so steps can be found in the Temporal UI.

All are Keyword attributes. The local landscape registers them at start; on another server register
them once (`temporal operator search-attribute create --name ApeiroPipeline --type Keyword`, ...).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PIPELINE = SearchAttributeKey.for_keyword("ApeiroPipeline")
SITE = SearchAttributeKey.for_keyword("ApeiroSite")
STEP = SearchAttributeKey.for_keyword("ApeiroStep")
STEP_TYPE = SearchAttributeKey.for_keyword("ApeiroStepType")

ALL = (PIPELINE, SITE, STEP, STEP_TYPE)
NAMES = tuple(k.name for k in ALL)

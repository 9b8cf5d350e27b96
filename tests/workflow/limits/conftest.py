from tests.workflow.limits.support import limits_engine

__all__ = ["limits_engine"]

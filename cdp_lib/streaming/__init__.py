"""Real-time: streaming event ingestion, live identity stitching and event-time triggers."""

from cdp_lib.streaming.config import CartTrigger, TriggersConfig, load_triggers
from cdp_lib.streaming.job import EventStream

__all__ = ["CartTrigger", "EventStream", "TriggersConfig", "load_triggers"]

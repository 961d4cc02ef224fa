"""Scenario actions: one module per action, each with its scheduling half (a step ->
timed events) and its executing half (what an event does to the lab); registry.py lists
them. See base.py for the shapes."""

from testbed.scenario.actions.base import Action, ActionError, Event, RunContext
from testbed.scenario.actions.registry import ActionRegistry, default_actions, schedule

__all__ = ["Action", "ActionError", "ActionRegistry", "Event", "RunContext",
           "default_actions", "schedule"]

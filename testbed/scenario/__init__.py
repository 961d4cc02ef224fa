"""Scripted outages: scenario files, node selection, the resolved schedule, the engine."""

"""Completion messages and on-call alerts, and how they are delivered."""

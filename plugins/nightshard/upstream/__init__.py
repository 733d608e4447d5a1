"""Waiting for the upstream partition: the deferrable sensor and its trigger."""

"""Kubernetes-safe names and label values for shard pods; pure and standard library only."""

from __future__ import annotations

import hashlib
import re

LABEL_VALUE_MAX = 63
POD_NAME_MAX = 63
_HASH_CHARS = 8
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")
_EDGE_LABEL = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_EDGE_DNS = re.compile(r"^[^a-z0-9]+|[^a-z0-9]+$")


def short_hash(*parts: object) -> str:
    """Eight hex characters that identify `parts`; stable across processes and Python versions."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_CHARS]


def safe_label_value(raw: str) -> str:
    """A valid label value for `raw`: unchanged when already valid, else cleaned, cut and hashed.

    Valid means at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric (or empty). When the
    value must change, a hash of the raw value is appended so two run ids that clean to the same
    text (`manual__2026-01-01T00:00:00+00:00` vs `...00-00:00`) keep different labels.
    """
    if _is_valid_label_value(raw):
        return raw
    cleaned = _EDGE_LABEL.sub("", _LABEL_UNSAFE.sub("-", raw))
    suffix = short_hash(raw)
    keep = LABEL_VALUE_MAX - len(suffix) - 1
    cleaned = _EDGE_LABEL.sub("", cleaned[:keep])
    return f"{cleaned}-{suffix}" if cleaned else suffix


def _is_valid_label_value(value: str) -> bool:
    if value == "":
        return True
    return (
        len(value) <= LABEL_VALUE_MAX
        and _LABEL_UNSAFE.search(value) is None
        and _EDGE_LABEL.search(value) is None
    )


def dns_fragment(raw: str, max_length: int) -> str:
    """Lower-case DNS-1123 label text from `raw`, at most `max_length` characters (may be empty)."""
    cleaned = _EDGE_DNS.sub("", _DNS_UNSAFE.sub("-", raw.lower()))
    return _EDGE_DNS.sub("", cleaned[:max_length])


def worker_pod_name(
    *, pipeline: str, run_id: str, shard_id: str, shard_index: int, try_number: int, preemption: int = 0
) -> str:
    """`ns-<pipeline>-<index>-t<try>-<hash>`: the same inputs give the same name, any change a new one.

    The hash covers the run and the shard id, so two runs (or two pipelines that clean to the same
    prefix) never collide, and a retry (new try number) never collides with the failed pod of the
    previous try, which is kept for on-call. The pod that replaces a preempted one within the same
    try is `...-t<try>p<n>-<hash>`.
    """
    attempt = f"t{try_number}p{preemption}" if preemption else f"t{try_number}"
    hashed = (pipeline, run_id, shard_id, try_number, preemption) if preemption else (pipeline, run_id, shard_id, try_number)
    tail = f"-{shard_index}-{attempt}-{short_hash(*hashed)}"
    room = POD_NAME_MAX - len("ns-") - len(tail)
    prefix = dns_fragment(pipeline, room) or "shard"
    return f"ns-{prefix}{tail}"

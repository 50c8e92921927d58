"""The relational store: schema, engine, and the transactional helpers every shell uses."""

from pingan.store.db import (
    LEASE_RENEW_S,
    LEASE_S,
    SYSTEM,
    Store,
    as_utc,
    claim_event,
    component_row,
    component_state,
    crews_freed,
    emit,
    insert_or_ignore,
    mark_component,
    new_event_id,
    process_id,
    record_audit,
    take_lease,
)

__all__ = [
    "LEASE_RENEW_S",
    "LEASE_S",
    "SYSTEM",
    "Store",
    "as_utc",
    "claim_event",
    "component_row",
    "component_state",
    "crews_freed",
    "emit",
    "insert_or_ignore",
    "mark_component",
    "new_event_id",
    "process_id",
    "record_audit",
    "take_lease",
]

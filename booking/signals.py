"""Signals the booking engine sends to the layers above it.

Booking must not import notifications' consumers (the waitlist, the agent, the
phone flow); they connect here instead. Sent only after the tenant transaction
commits, with plain ids, so a receiver may enqueue a task with them as is.
"""

from __future__ import annotations

import django.dispatch

# kwargs: kind (one of KINDS), tenant_id (UUID), appointment_id (int); for
# "rescheduled" also previous_start (aware UTC datetime) and previous_staff_id
# (int), so listeners know which slot was freed.
appointment_changed = django.dispatch.Signal()

BOOKED = "booked"
CANCELLED = "cancelled"
RESCHEDULED = "rescheduled"
NO_SHOW = "no_show"
COMPLETED = "completed"
KINDS = (BOOKED, CANCELLED, RESCHEDULED, NO_SHOW, COMPLETED)

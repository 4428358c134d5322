"""Linear recurrences and their scans.

The names of `lib.ops.scan.linear` are re-exported here (e.g. `lib.ops.scan.linear_recurrence`)."""

from lib.ops.scan.linear import (  # noqa: F401
    METHODS,
    RecurrenceState,
    linear_recurrence,
    linear_recurrence_init_state,
    linear_recurrence_ref,
    linear_recurrence_step,
    resolve_method,
    segment_cut,
)

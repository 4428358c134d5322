"""State-space models: Mamba's selective scan, SSD, diagonal LTI SSMs (S4D, S5, LRU), LMU.

The names of `lib.ops.ssm.selective` are re-exported here (e.g. `lib.ops.ssm.selective_scan`)."""

from lib.ops.ssm.selective import (  # noqa: F401
    METHODS,
    SelectiveScanState,
    discretize_delta,
    resolve_method,
    selective_scan,
    selective_scan_init_state,
    selective_scan_ref,
    selective_scan_step,
)

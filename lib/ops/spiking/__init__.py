"""Spiking neurons, surrogate gradients, delays, encoders, metrics, SLTT.

The names of `lib.ops.spiking.core` are re-exported here (e.g. `lib.ops.spiking.lif`)."""

from lib.ops.spiking.core import (  # noqa: F401
    LIF_METHODS,
    RESETS,
    SURROGATES,
    Surrogate,
    get_surrogate,
    lif,
    lif_init_state,
    lif_step,
    register_surrogate,
    spike,
    spike_fn,
)

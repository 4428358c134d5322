"""Activity and energy measures for spiking networks: firing rates, sparsity, SynOps and energy (Horowitz 2014 per-operation costs; Lemaire et al. 2022).

A spiking layer's input spike triggers one accumulate (AC) per outgoing synapse, so its
synaptic operations are `SynOps = sum(spikes) * fan_out`. A non-spiking (analog) layer costs
multiply-accumulates (MACs). The energy estimate is

    E = SynOps * E_AC + MACs * E_MAC        (defaults 0.9 pJ and 4.6 pJ: 32-bit float, 45 nm)

and `spiking_metrics` returns everything as a flat dict of scalars that a train loop logs.
"""

import math
from dataclasses import dataclass

import jax.numpy as jnp


@dataclass(frozen=True)
class EnergyCosts:
    """Per-operation energy in picojoules (Horowitz 2014, 45 nm, 32-bit float)."""

    accumulate_pj: float = 0.9
    mac_pj: float = 4.6


def firing_rate(spikes):
    """Mean spikes per neuron per step (a scalar) of spikes [B, T, ...]."""
    return jnp.mean(jnp.asarray(spikes, jnp.float32))


def sparsity(spikes):
    """Fraction of (neuron, step) entries without a spike: 1 - mean(spikes != 0)."""
    return 1.0 - jnp.mean((jnp.asarray(spikes) != 0).astype(jnp.float32))


def synops(spikes, fan_out: float):
    """Synaptic operations per sample: total spikes [B, T, ...] times the fan-out, over B."""
    spikes = jnp.asarray(spikes, jnp.float32)
    return jnp.sum(spikes) * fan_out / spikes.shape[0]


def dense_fan_out(out_features: int) -> int:
    """Fan-out of one input neuron of a dense layer: every output neuron."""
    return int(out_features)


def conv_fan_out(kernel_size, out_channels: int, strides=1) -> float:
    """Average fan-out of one input neuron of a convolution: taps x out channels / stride."""
    kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    strides = (strides,) * len(kernel_size) if isinstance(strides, int) else tuple(strides)
    return math.prod(kernel_size) * out_channels / math.prod(strides)


def energy_pj(synaptic_ops, macs=0.0, costs: EnergyCosts = EnergyCosts()):
    """Energy estimate in picojoules from accumulate and multiply-accumulate counts."""
    return synaptic_ops * costs.accumulate_pj + macs * costs.mac_pj


def spiking_metrics(
    spikes: dict,
    fan_out: dict | None = None,
    *,
    macs: float = 0.0,
    ann_macs: float | None = None,
    costs: EnergyCosts = EnergyCosts(),
) -> dict:
    """Per-layer activity and a whole-network energy estimate, as a flat metrics dict.

    Args:
      spikes: layer name -> spikes [B, T, ...] entering that layer's synapses (the output of
        the previous spiking layer).
      fan_out: layer name -> synapses per input neuron (`dense_fan_out`, `conv_fan_out`);
        layers missing here get rates and sparsity but no SynOps.
      macs: multiply-accumulates per sample of the analog (non-spiking) parts, e.g. a
        direct-coded first layer over all time steps.
      ann_macs: MACs per sample of the equivalent non-spiking network, for `energy/ratio`.
      costs: per-operation energies.

    Returns:
      {"firing_rate/<name>", "sparsity/<name>", "synops/<name>", "synops/total",
       "energy_pj/total", and "energy_pj/ann", "energy/ratio" when `ann_macs` is given}.
    """
    fan_out = fan_out or {}
    unknown = set(fan_out) - set(spikes)
    if unknown:
        raise ValueError(f"fan_out names layers without spikes: {sorted(unknown)}")
    out = {}
    total = jnp.float32(0.0)
    for name, s in spikes.items():
        out[f"firing_rate/{name}"] = firing_rate(s)
        out[f"sparsity/{name}"] = sparsity(s)
        if name in fan_out:
            out[f"synops/{name}"] = synops(s, fan_out[name])
            total = total + out[f"synops/{name}"]
    out["synops/total"] = total
    out["energy_pj/total"] = energy_pj(total, macs, costs)
    if ann_macs is not None:
        out["energy_pj/ann"] = energy_pj(0.0, ann_macs, costs)
        out["energy/ratio"] = out["energy_pj/total"] / out["energy_pj/ann"]
    return out

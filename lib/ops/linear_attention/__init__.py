"""Linear attention: GLA, retention (RetNet), RWKV-6.

The names of `lib.ops.linear_attention.gated` are re-exported here (e.g. `lib.ops.linear_attention.gla`)."""

from lib.ops.linear_attention.gated import (  # noqa: F401
    gla,
    gla_ref,
    gla_step,
)

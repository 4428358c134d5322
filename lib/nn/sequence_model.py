"""A stack of pre-norm mixer blocks for language modelling and classification (GPT-style LM).

`SequenceModel(mixer="gla", ...)` builds embedding -> N `PreNormBlock`s -> RMSNorm -> head with
any mixer of `lib.nn.registry`. It runs whole sequences (training), or token by token from
`init_state` with `step` (decoding), and optionally scans over layers and rematerialises them.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.blocks import PreNormBlock, RMSNorm


class SequenceModel(nn.Module):
    """Embedding, `depth` pre-norm blocks of one mixer, final norm and output head.

    Attributes:
      dim: model width.
      depth: number of blocks.
      mixer: registered mixer name; `mixer_kwargs` are its extra constructor fields.
      vocab_size: token vocabulary (integer inputs `[b, l]`); None for float inputs
        `[b, l, features]`, which get a linear input projection.
      num_outputs: head width; default `vocab_size` (required when `vocab_size` is None).
      task: "lm" (head output at every position) or "classify" (pooled, one output per sequence).
      pool: "mean" or "last", for `task="classify"`.
      mlp_hidden_dim: the blocks' MLP width (0 drops the MLP).
      scan_layers: run the blocks with `nn.scan` (parameters stacked on a leading layer axis).
      remat: rematerialise each block in the backward pass (full-sequence calls without state).
      dtype: computation dtype of every block and mixer (`lib.nn.precision`; None: float32
        from float32 inputs). The head's outputs (logits) are float32 whatever `dtype`.
      param_dtype: dtype of every parameter (float32).
    """

    dim: int
    depth: int
    mixer: str = "attention"
    mixer_kwargs: Mapping[str, Any] | None = None
    vocab_size: int | None = None
    num_outputs: int | None = None
    task: str = "lm"
    pool: str = "mean"
    mlp_hidden_dim: int | None = None
    scan_layers: bool = False
    remat: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        if self.task not in ("lm", "classify"):
            raise ValueError(f"`task` must be 'lm' or 'classify', got {self.task!r}")
        if self.pool not in ("mean", "last"):
            raise ValueError(f"`pool` must be 'mean' or 'last', got {self.pool!r}")
        if self.vocab_size is None and self.num_outputs is None:
            raise ValueError("`num_outputs` is required when `vocab_size` is None")
        kw = precision.precision_kwargs(self)
        if self.vocab_size is None:
            self.embed = nn.Dense(self.dim, name="input_proj", **kw)
        else:
            self.embed = nn.Embed(self.vocab_size, self.dim, name="embed", **kw)
        if self.scan_layers:
            self.block = self._make_block(name="blocks")
        else:
            self.blocks = [self._make_block(name=f"block_{i}") for i in range(self.depth)]
        self.final_norm = RMSNorm(**kw)
        self.head = nn.Dense(self.num_outputs or self.vocab_size, name="head", **kw)

    def _make_block(self, **kwargs):
        return PreNormBlock(
            self.dim, self.mixer, self.mixer_kwargs, self.mlp_hidden_dim,
            **precision.precision_kwargs(self), **kwargs,
        )  # fmt: skip

    def _head(self, h):
        """Output head; logits in float32 whatever the computation dtype."""
        return self.head(h).astype(jnp.float32)

    def _embed(self, inputs):
        if self.vocab_size is not None and not jnp.issubdtype(inputs.dtype, jnp.integer):
            raise ValueError(f"`inputs` must be integer tokens, got dtype {inputs.dtype}")
        return self.embed(inputs)

    def _scan(self, fn, x, xs):
        scan = nn.scan(
            fn,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=0,
            out_axes=0,
            length=self.depth,
        )
        return scan(self.block, x, xs)

    def _run_blocks(self, x, state, return_state):
        """Full-sequence pass through the blocks; returns `(x, new_state or None)`."""
        stateful = state is not None or return_state
        if not stateful:
            call = lambda mdl, h: mdl(h)
            if self.remat:
                call = nn.remat(call)
            if self.scan_layers:
                x, _ = self._scan(lambda mdl, h, _: (call(mdl, h), None), x, None)
                return x, None
            for blk in self.blocks:
                x = call(blk, x)
            return x, None
        if state is None:
            state = self.init_state(x.shape[0], x.dtype)
        if self.scan_layers:
            return self._scan(lambda mdl, h, s: mdl(h, state=s, return_state=True), x, state)
        new_state = []
        for blk, s in zip(self.blocks, state):
            x, s = blk(x, state=s, return_state=True)
            new_state.append(s)
        return x, tuple(new_state)

    def _pool(self, h_BxLxD, mask_BxL):
        if mask_BxL is None:
            return h_BxLxD.mean(axis=1) if self.pool == "mean" else h_BxLxD[:, -1]
        mask = mask_BxL.astype(h_BxLxD.dtype)
        if self.pool == "mean":
            return (h_BxLxD * mask[..., None]).sum(1) / jnp.maximum(mask.sum(1), 1)[:, None]
        last = jnp.maximum(mask_BxL.astype(jnp.int32).sum(1) - 1, 0)
        return jnp.take_along_axis(h_BxLxD, last[:, None, None], axis=1)[:, 0]

    def __call__(self, inputs, *, mask=None, state=None, return_state=False):
        """Run whole sequences.

        Args:
          inputs: int tokens `[b, l]`, or floats `[b, l, features]` when `vocab_size` is None.
          mask: optional `[b, l]` validity mask (1 = real token) for classification pooling;
            "last" pools the last valid position of each (left-aligned) sequence.
          state: per-layer mixer states from `init_state` to continue from.
          return_state: also return the per-layer states after the last position.
        Returns:
          `[b, l, num_outputs]` ("lm") or `[b, num_outputs]` ("classify"); with
          `return_state`, a pair `(outputs, state)`.
        """
        x, new_state = self._run_blocks(self._embed(inputs), state, return_state)
        h = self.final_norm(x)
        if self.task == "classify":
            h = self._pool(h, mask)
        out = self._head(h)
        return (out, new_state) if return_state else out

    def init_state(self, batch_size, dtype=jnp.float32):
        """Zero decoding state: a tuple of per-layer mixer states, or (with `scan_layers`) one
        state pytree stacked on a leading layer axis. Call as
        `model.apply(params, batch_size, method="init_state")`."""
        if self.scan_layers:
            fn = lambda mdl, c, _: (c, mdl.init_state(batch_size, dtype))
            return self._scan(fn, jnp.zeros(()), None)[1]
        return tuple(blk.init_state(batch_size, dtype) for blk in self.blocks)

    def step(self, state, token):
        """One position: `token` `[b]` int (or `[b, features]` floats) -> `(state, [b, out])`.

        For "classify" the output is the head applied to this position's features.
        """
        x = self._embed(token)
        if self.scan_layers:
            x, state = self._scan(lambda mdl, h, s: mdl.step(s, h)[::-1], x, state)
        else:
            new_state = []
            for blk, s in zip(self.blocks, state):
                s, x = blk.step(s, x)
                new_state.append(s)
            state = tuple(new_state)
        return state, self._head(self.final_norm(x))


def generate(model, params, prompt, num_tokens, *, rng=None, temperature=0.0):
    """Decode `num_tokens` tokens after `prompt` with a language `SequenceModel`.

    The prompt is fed with `step` too (so any mixer with a `step` works), then tokens are chosen
    greedily (`temperature=0`) or sampled from `softmax(logits / temperature)`.

    Args:
      model: a `SequenceModel` with `task="lm"` and a `vocab_size`.
      params: its variables (`{"params": ...}`).
      prompt: `[b, p]` int tokens, `p >= 1`.
      num_tokens: number of new tokens.
      rng: PRNG key (required when `temperature > 0`).
      temperature: 0 for greedy decoding.
    Returns:
      `[b, p + num_tokens]` int32 tokens: the prompt followed by the generated ones.
    """
    if model.task != "lm" or model.vocab_size is None:
        raise ValueError("`model` must be a token language model (task='lm', vocab_size set)")
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError(f"`prompt` must be [batch, length >= 1], got shape {prompt.shape}")
    if temperature > 0 and rng is None:
        raise ValueError("`rng` is required when `temperature > 0`")
    rng = jax.random.key(0) if rng is None else rng
    batch = prompt.shape[0]
    step = lambda s, t: model.apply(params, s, t, method="step")

    state = model.apply(params, batch, method="init_state")
    state, logits = jax.lax.scan(step, state, prompt.T.astype(jnp.int32))
    last = logits[-1]

    def pick(logits_BxV, key):
        if temperature <= 0:
            return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
        return jax.random.categorical(key, logits_BxV / temperature).astype(jnp.int32)

    def gen(carry, key):
        state, logits = carry
        tok = pick(logits, key)
        state, logits = step(state, tok)
        return (state, logits), tok

    keys = jax.random.split(rng, num_tokens)
    _, new = jax.lax.scan(gen, (state, last), keys)
    return jnp.concatenate([prompt.astype(jnp.int32), new.T], axis=1)

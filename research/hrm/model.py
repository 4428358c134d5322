"""Hierarchical Reasoning Model (Wang et al. 2025): slow H and fast L recurrent modules.

A segment runs `cycles` (N) high-level updates, each after `l_steps` (T) low-level updates:

    z_L <- f_L(z_L + z_H + x)   (T times per cycle)
    z_H <- f_H(z_H + z_L)       (once per cycle)

Every update but the last L step and the last H step runs under `stop_gradient` (the paper's
one-step gradient approximation: gradients flow only through the final fixed-point step). The
answer is read from z_H. A Q head on z_H gives (halt, continue) logits for adaptive compute.
Deep supervision (`research/hrm/steps.py`, the train step `lib.train.loop` runs) runs several
segments per example, detaching the carried (z_H, z_L) between them, with a loss and an
optimizer update after each; `build(config)` wires it to the shared training loop.

Baselines with the same blocks: `kind="flat"` (one recurrent module holding all the blocks, the
hierarchy removed, same block evaluations per segment) and `kind="transformer"` (the same
blocks applied once, no recurrence: a plain bidirectional Transformer of the same size).
Blocks are bidirectional (the puzzles are grids, not sequences), built from `lib.ops.attention.softmax`
(reference attention without a mask, rotary positions) and `lib.nn.blocks` (RMSNorm, GatedMLP).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.blocks import GatedMLP, RMSNorm
from lib.ops.attention.softmax import attention_ref, rotary_embedding
from research.hrm.sudoku4 import make_split

KINDS = ("hrm", "flat", "transformer")


class EncoderBlock(nn.Module):
    """Pre-norm bidirectional block: x + attn(norm x), then x + GatedMLP(norm x). [b, l, d]."""

    dim: int
    num_heads: int = 4

    @nn.compact
    def __call__(self, x_BxLxD):
        b, length, d = x_BxLxD.shape
        hd = d // self.num_heads
        h = RMSNorm()(x_BxLxD)
        qkv = nn.Dense(3 * d, use_bias=False, name="qkv")(h).reshape(b, length, 3, -1, hd)
        pos = jnp.arange(length)
        q = rotary_embedding(qkv[:, :, 0], pos)
        k = rotary_embedding(qkv[:, :, 1], pos)
        o = attention_ref(q, k, qkv[:, :, 2]).reshape(b, length, d)
        x = x_BxLxD + nn.Dense(d, use_bias=False, name="out")(o)
        return x + GatedMLP(d)(RMSNorm()(x))


class Stack(nn.Module):
    """`depth` EncoderBlocks in a row."""

    dim: int
    depth: int
    num_heads: int = 4

    @nn.compact
    def __call__(self, x):
        for i in range(self.depth):
            x = EncoderBlock(self.dim, self.num_heads, name=f"block{i}")(x)
        return x


class HRM(nn.Module):
    """HRM and its two same-size baselines over integer grids flattened to [b, l].

    Attributes:
      vocab_size: input/output tokens.
      dim, num_heads: width and heads.
      h_depth, l_depth: blocks in the H and L modules (flat/transformer use h_depth + l_depth).
      cycles: N, high-level updates per segment.
      l_steps: T, low-level updates per high-level update.
      kind: "hrm", "flat" or "transformer".
    """

    vocab_size: int
    dim: int = 64
    num_heads: int = 4
    h_depth: int = 2
    l_depth: int = 2
    cycles: int = 2
    l_steps: int = 2
    kind: str = "hrm"

    def setup(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        self.embed = nn.Embed(self.vocab_size, self.dim)
        if self.kind == "hrm":
            self.f_l = Stack(self.dim, self.l_depth, self.num_heads)
            self.f_h = Stack(self.dim, self.h_depth, self.num_heads)
        else:
            self.f = Stack(self.dim, self.h_depth + self.l_depth, self.num_heads)
        self.norm = RMSNorm()
        self.head = nn.Dense(self.vocab_size)
        self.q_head = nn.Dense(2, bias_init=nn.initializers.constant(-3.0))

    def flat_steps(self) -> int:
        """Flat-model updates per segment with the HRM's block evaluations:
        N (T l_depth + h_depth) / (l_depth + h_depth), at least 1."""
        evals = self.cycles * (self.l_steps * self.l_depth + self.h_depth)
        return max(1, round(evals / (self.l_depth + self.h_depth)))

    def init_carry(self, batch: int, length: int):
        """Zero (z_H, z_L), each [b, l, dim]."""
        z = jnp.zeros((batch, length, self.dim), jnp.float32)
        return z, z

    def __call__(self, tokens_BxL, carry=None):
        """One segment.

        Args:
          tokens_BxL: int [b, l] puzzle tokens.
          carry: (z_H, z_L) from the previous segment (None: zeros).

        Returns:
          (new_carry, logits [b, l, vocab], q_logits [b, 2] = (halt, continue)).
        """
        b, length = tokens_BxL.shape
        x = self.embed(tokens_BxL) * jnp.sqrt(self.dim)
        z_h, z_l = self.init_carry(b, length) if carry is None else carry
        sg = jax.lax.stop_gradient
        if self.kind == "hrm":
            for n in range(self.cycles):
                for t in range(self.l_steps):
                    last_l = n == self.cycles - 1 and t == self.l_steps - 1
                    z_new = self.f_l(z_l + z_h + x)
                    z_l = z_new if last_l else sg(z_new)
                z_new = self.f_h(z_h + z_l)
                z_h = z_new if n == self.cycles - 1 else sg(z_new)
        elif self.kind == "flat":
            steps = self.flat_steps()
            for s in range(steps):
                z_new = self.f(z_h + x)
                z_h = z_new if s == steps - 1 else sg(z_new)
        else:
            z_h = self.f(x)
        h = self.norm(z_h)
        logits = self.head(h)
        q = self.q_head(jnp.mean(h, axis=1))
        return (z_h, z_l), logits, q


def make_model(config, vocab_size: int) -> HRM:
    """The model named by `config.model` (kind, sizes, N, T)."""
    m = config.model
    return HRM(
        vocab_size, m.dim, m.num_heads, m.h_depth, m.l_depth, m.cycles, m.l_steps, kind=m.kind
    )


def q_continue_target(next_q_BxK, current_is_last):
    """The Q-learning target of the "continue" action (HRM's ACT, after Eq. 5 of the paper).

    With `Q = sigmoid(q_logits)` the values of (halt, continue) after segment m + 1:

        G_continue^m = Q_halt^{m+1}                            if segment m is the last (M_max)
                     = max(Q_halt^{m+1}, Q_continue^{m+1})     otherwise

    Args:
      next_q_BxK: [b, 2] (halt, continue) logits of the *next* segment (computed from the
        detached carry; the result is wrapped in `stop_gradient`: a target, not a path).
      current_is_last: bool (Python or traced scalar): segment m is the last allowed one.

    Returns:
      [b] targets in (0, 1).
    """
    q_next = jax.nn.sigmoid(jax.lax.stop_gradient(next_q_BxK).astype(jnp.float32))
    best = jnp.maximum(q_next[:, 0], q_next[:, 1])
    return jnp.where(current_is_last, q_next[:, 0], best)


def draw_min_segments(key, batch: int, max_segments: int, explore_prob: float):
    """HRM's exploration of the halting policy: per example, with probability `explore_prob`
    the minimum segment count M_min is drawn uniformly from {2, ..., M_max}, else M_min = 1.

    Args:
      key: a JAX PRNG key (the train step's).
      batch: examples in the batch.
      max_segments: M_max (>= 2 when `explore_prob > 0`).
      explore_prob: epsilon in [0, 1].

    Returns:
      int32 [batch] M_min per example.
    """
    if not 0.0 <= explore_prob <= 1.0:
        raise ValueError(f"explore_prob must be in [0, 1], got {explore_prob}")
    if explore_prob > 0 and max_segments < 2:
        raise ValueError(f"exploring M_min in 2..M_max needs M_max >= 2, got {max_segments}")
    k_explore, k_draw = jax.random.split(key)
    explore = jax.random.uniform(k_explore, (batch,)) < explore_prob
    drawn = jax.random.randint(k_draw, (batch,), 2, max(max_segments, 2) + 1)
    return jnp.where(explore, drawn, 1).astype(jnp.int32)


def training_halt(q_BxK, segments_done, min_segments_B, max_segments: int, q_continue: bool):
    """Which examples halt after `segments_done` training segments (HRM's ACT in training).

    An example halts at M_max, or once it has run at least its M_min segments and its Q head
    says halt: Q_halt > Q_continue with the continue target, else sigmoid(q_halt) > 0.5.

    Args:
      q_BxK: [b, 2] (halt, continue) logits of the segment just run.
      segments_done: segments run so far (1-based; a Python or traced int).
      min_segments_B: int [b] M_min (`draw_min_segments`).
      max_segments: M_max.
      q_continue: whether the continue logit is trained (changes the halting rule).

    Returns:
      bool [b].
    """
    q = jnp.asarray(q_BxK, jnp.float32)
    wants = q[:, 0] > q[:, 1] if q_continue else q[:, 0] > 0.0
    done = segments_done >= jnp.asarray(min_segments_B)
    return (segments_done >= max_segments) | (wants & done)


def segment_loss(logits, q, batch, q_weight: float = 0.5, continue_target=None, active=None):
    """Cross-entropy on the masked cells plus BCE of the halt logit against "solved" and,
    when `continue_target` is given, BCE of the continue logit against it.

    Args:
      logits: [b, l, vocab]; q: [b, 2]; batch: `targets` int [b, l], `mask` float [b, l].
      q_weight: weight of the halting (and continue) loss.
      continue_target: optional [b] Q-learning target of the continue action
        (`q_continue_target`).
      active: optional [b] float, 1 for examples still running and 0 for those that halted
        in an earlier segment (training-time halting): halted examples add nothing to the
        loss or the metrics.

    Returns:
      (loss, metrics) with `ce`, `cell_accuracy`, `exact_accuracy` (all masked cells right),
      `halt_bce` and, with a continue target, `continue_bce`.
    """
    targets, mask = batch["targets"], batch["mask"]
    w_B = jnp.ones(targets.shape[0], jnp.float32) if active is None else active
    mask = mask * w_B[:, None]
    examples = jnp.maximum(jnp.sum(w_B), 1.0)

    def mean_over_active(x_B):
        return jnp.sum(x_B * w_B) / examples

    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    nll = -jnp.take_along_axis(logp, targets[..., None], -1)[..., 0]
    count = jnp.maximum(jnp.sum(mask), 1.0)
    ce = jnp.sum(nll * mask) / count
    right = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    solved = jnp.all((right > 0) | (mask == 0), axis=-1).astype(jnp.float32)
    halt_bce = mean_over_active(optax_sigmoid_bce(q[:, 0], jax.lax.stop_gradient(solved)))
    metrics = {
        "ce": ce,
        "cell_accuracy": jnp.sum(right * mask) / count,
        "exact_accuracy": mean_over_active(solved),
        "halt_bce": halt_bce,
    }
    q_loss = halt_bce
    if continue_target is not None:
        continue_bce = mean_over_active(
            optax_sigmoid_bce(q[:, 1], jax.lax.stop_gradient(continue_target))
        )
        metrics["continue_bce"] = continue_bce
        q_loss = q_loss + continue_bce
    return ce + q_weight * q_loss, metrics


def optax_sigmoid_bce(logits, labels):
    """Numerically stable binary cross-entropy with logits."""
    return jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def num_segments(config) -> int:
    """M: deep-supervision segments (1 for the non-recurrent Transformer)."""
    return 1 if config.model.kind == "transformer" else int(config.model.segments)


@functools.cache
def _sudoku4(items: tuple, seed: int) -> dict:
    return make_split(**dict(items), seed=seed)


def puzzle_splits(config) -> tuple[dict, dict, int]:
    """`(train, test, vocab_size)`: dicts of `inputs`, `targets` int32 [n, l] and `mask`
    float32 [n, l]. "sudoku4" is generated in memory (`research.hrm.sudoku4`, deterministic
    from `config.seed`); any other `config.data.name` (e.g. "maze") is read from its prepared
    `lib.data` set, which must have been prepared with `config.data.builder_kwargs`."""
    import lib.data

    d = config.data
    kwargs = dict(d.builder_kwargs)
    if d.name == "sudoku4":
        split = _sudoku4(tuple(sorted(kwargs.items())), int(config.seed))
        return split["train"], split["test"], 5
    data_dir = d.data_dir or None
    meta = lib.data.info(d.name, data_dir)  # DatasetNotPreparedError names the command
    stored = meta.get("config", {})
    differ = {k: (stored.get(k), v) for k, v in kwargs.items() if stored.get(k) != v}
    if differ:
        sets = " ".join(f"--set {k}={v}" for k, v in kwargs.items())
        raise ValueError(
            f"{d.name} is prepared with other options (prepared, wanted): {differ}; prepare it "
            f"with: {lib.data.prepare_command(d.name, data_dir)} --overwrite {sets}"
        )
    splits = []
    for split in ("train", "test"):
        n = meta["splits"][split]
        it = lib.data.load(d.name, split, batch_size=n, shuffle=False, num_epochs=1,
                           data_dir=data_dir, shard_index=0, shard_count=1)  # fmt: skip
        batch = next(iter(it))
        splits.append({k: np.asarray(batch[k]) for k in ("inputs", "targets", "mask")})
    return splits[0], splits[1], int(meta["vocab_size"])


def padded(split: dict, multiple: int) -> dict:
    """`split` with `weight` (1 per example) and, so that it shards over `multiple` devices,
    copies of its first example of weight 0 appended."""
    n = len(split["inputs"])
    pad = -n % multiple
    out = {k: np.concatenate([v, np.repeat(v[:1], pad, 0)]) for k, v in split.items()}
    out["weight"] = np.concatenate([np.ones(n), np.zeros(pad)]).astype(np.float32)
    return out


def loss_fn(params, batch, rng, *, model, train):
    """One segment from the zero state: `segment_loss` (training uses the deep-supervision
    step of `research.hrm.steps` instead)."""
    del rng, train
    _, logits, q = model.apply({"params": params}, batch["inputs"])
    return segment_loss(logits, q, batch)


def build(config) -> dict:
    """HRM (or a baseline, `config.model.kind`) on `config.data` (see configs/puzzles.py): the
    keyword arguments of `lib.train.loop.train_and_evaluate`, with HRM's deep-supervision
    train step and ACT evaluation (`research.hrm.steps`). Training batches are epochs of fresh
    permutations of the training puzzles; the test puzzles are evaluated at the end in one
    batch, padded to a multiple of the device count (`test_cell_accuracy`, `test_exact_accuracy`, `test_act_exact_accuracy`,
    `test_act_mean_segments`); `on_end` adds `num_params`."""
    from lib.data.arrays import EpochBatches
    from lib.train.state import num_params
    from research.hrm.steps import make_act_eval_step, make_deep_supervision_step

    m = config.model
    if m.kind not in KINDS:
        raise ValueError(
            f"config.model.kind must be one of {KINDS} for one run, got {m.kind!r} "
            "('all' is a study: python -m launch.hrm)"
        )
    train, test, vocab_size = puzzle_splits(config)
    model = make_model(config, vocab_size)
    segments = num_segments(config)
    q_continue = bool(m.q_continue)
    return {
        "model": model,
        "loss_fn": loss_fn,
        "train_data": EpochBatches(train, config.data.batch_size, seed=config.seed),
        "test_data": lambda: iter([padded(test, jax.device_count())]),
        "make_train_step": make_deep_supervision_step(
            segments, float(m.q_weight), q_continue, bool(m.train_halting), float(m.explore_prob)
        ),
        "make_eval_step": make_act_eval_step(segments, q_continue),
        "on_end": lambda state, workdir: {"num_params": num_params(state.params)},
    }

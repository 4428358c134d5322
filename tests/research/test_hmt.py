"""HMT (He et al., 2024): memory carries information across segments (and only through it),
the model is causal, the batched no-memory form equals reading segments one by one, the data
stream is the corpus text, bad settings fail clearly, and a smoke run of lib.train."""

import os
import stat

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import lib.data
from lib.data import text as text_lib
from lib.train.config import load_config
from research.hmt import data as hmt_data
from research.hmt.model import HMT, Backbone, build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "research", "hmt", "configs", "kjv.py")
S, NSEG, V, D = 8, 3, 11, 16  # segment length, segments, vocabulary, width


def make(num_memories=2, sensory_len=0, segment_len=S, **kw):
    return HMT(Backbone(D, depth=1, num_heads=2), V, segment_len, num_memories, sensory_len, **kw)


def position_jacobian(model, params, x_BxLxD):
    """`J[t, s]` = max |d(sum of the logits at position t)/d(embedding at s)|, `[L, L]` (traced:
    call inside `jit`)."""
    per_position = lambda x: model.apply(params, x, method="logits_from_embeddings").sum((0, 2))
    return jnp.abs(jax.jacrev(per_position)(x_BxLxD)).max(axis=(1, 3))


@pytest.fixture(scope="module")
def inputs():
    tokens = jax.random.randint(jax.random.key(0), (1, S * NSEG), 0, V)
    x = jax.random.normal(jax.random.key(1), (1, S * NSEG, D))
    return tokens, x


K = 3  # sensory length of the Jacobian tests: segment 0's first S - K tokens lie outside it


@pytest.fixture(scope="module")
def jacobians(inputs):
    """Position Jacobians of HMT (sensory K, previous-segment summaries), the same model
    without memory, and HMT with the paper's prefix summaries, from one compiled function."""
    tokens, x = inputs
    models = {
        "hmt": make(num_memories=2, sensory_len=K),
        "plain": make(num_memories=0, sensory_len=K),
        "prefix": make(num_memories=2, summary_source="prefix"),
    }

    @jax.jit
    def all_jacobians(key):
        return {name: position_jacobian(m, m.init(key, tokens), x) for name, m in models.items()}

    return jax.tree.map(np.asarray, all_jacobians(jax.random.key(2)))


FUTURE = np.triu(np.ones((S * NSEG, S * NSEG), bool), k=1)


@pytest.mark.claim
def test_memory_carries_earlier_segments_and_model_is_causal(jacobians):
    J = jacobians["hmt"]
    assert np.all(J[FUTURE] == 0.0), np.argwhere(J * FUTURE)  # causal, "previous" summaries
    assert np.all(np.diag(J) > 1e-6)
    # Segments 1 and 2 depend on segment 0 out of the sensory window's reach: through memory.
    assert J[2 * S : 3 * S, : S - K].max() > 1e-6
    assert J[S : 2 * S, : S - K].max() > 1e-6


@pytest.mark.claim
def test_without_memory_only_the_sensory_window_reaches_a_segment(jacobians):
    J = jacobians["plain"]
    assert np.all(J[FUTURE] == 0.0)
    for n in range(1, NSEG):
        # Nothing before the sensory window reaches segment n: exactly zero.
        assert np.all(J[n * S : (n + 1) * S, : n * S - K] == 0.0), n
        assert J[n * S : (n + 1) * S, n * S - K : n * S].max() > 1e-6  # the sensory tokens act


@pytest.mark.claim
def test_paper_prefix_summary_leaks_the_future(jacobians):
    # Why "previous" is the default: the paper's summary of the segment's own first tokens
    # lets early positions see later tokens of the same segment through the recall weights
    # (from segment 2 on, when the cache holds two memories to weigh).
    J = jacobians["prefix"]
    t = 2 * S
    assert J[t, t + 1 : t + S // 2].max() > 1e-7


@pytest.mark.claim
def test_batched_independent_segments_equal_one_by_one(inputs):
    tokens, x = inputs
    model = make(num_memories=0, sensory_len=K)

    @jax.jit
    def fast_and_reference(key):
        params = model.init(key, tokens)
        fast = model.apply(params, x, method="logits_from_embeddings")
        read = lambda w: model.apply(params, w, method=lambda m, w: m.head(m.backbone(w)))
        refs = []
        for n in range(NSEG):  # each segment read alone, with its sensory predecessors
            lo = max(n * S - K, 0)
            refs.append(read(x[:, lo : (n + 1) * S])[:, n * S - lo :])
        return fast, jnp.concatenate(refs, axis=1)

    fast, ref = fast_and_reference(jax.random.key(5))
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.claim
def test_full_context_model_equals_backbone_on_whole_sequence(inputs):
    tokens, x = inputs
    model = make(num_memories=0, segment_len=S * NSEG)

    @jax.jit
    def out_and_reference(key):
        params = model.init(key, tokens)
        whole = lambda m, t: m.head(m.backbone(m.embed(t)))
        return model.apply(params, tokens), model.apply(params, tokens, method=whole)

    out, ref = out_and_reference(jax.random.key(6))
    assert out.shape == (1, S * NSEG, V) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


NUM_CLASSES = 4  # the recall task's answer: one of tokens 0..3
QUERY = V - 1


def recall_batch(key, batch_size):
    """Segment 0: a class token c, then noise tokens; segment 1: only QUERY tokens, and every
    position of segment 1 must predict c. Returns `(tokens [b, 2S], c [b])`."""
    key_c, key_noise = jax.random.split(key)
    c = jax.random.randint(key_c, (batch_size,), 0, NUM_CLASSES)
    noise = jax.random.randint(key_noise, (batch_size, S - 1), NUM_CLASSES, QUERY)
    query = jnp.full((batch_size, S), QUERY)
    return jnp.concatenate([c[:, None], noise, query], axis=1), c


def trained_recall_loss(model, steps=60, batch_size=16):
    """Train `model` on `recall_batch` (Adam, one compiled scan over the steps); return the
    cross-entropy (nats) of segment 1's predictions of c on 256 fresh sequences (those of
    `recall_batch(key(3), 256)`)."""
    optimizer = optax.adam(1e-2)

    def recall_loss(params, key, batch_size):
        tokens, c = recall_batch(key, batch_size)
        logits = model.apply(params, tokens)[:, S:]
        labels = jnp.broadcast_to(c[:, None], logits.shape[:2])
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    @jax.jit
    def train_and_test(key):
        params = model.init(key, jnp.zeros((1, 2 * S), jnp.int32))

        def step(carry, k):
            params, opt_state = carry
            grads = jax.grad(recall_loss)(params, k, batch_size)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        keys = jax.random.split(jax.random.key(1), steps)
        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), keys)
        return recall_loss(params, jax.random.key(3), 256)

    return float(train_and_test(jax.random.key(0)))


@pytest.mark.claim
def test_claim_memory_recalls_an_earlier_segment_the_baseline_cannot_see():
    # The paper's claim in miniature: at the same window (one segment, no sensory tokens),
    # memory lowers the loss where the answer sits in an earlier segment.
    with_memory = trained_recall_loss(make(num_memories=1, sensory_len=0))
    # Without memory, segment 1's logits do not depend on segment 0 (checked below for random
    # weights; it holds for any), so its loss is at least the entropy of the labels c.
    plain = make(num_memories=0, sensory_len=0)
    (tokens, c), (other, _) = (
        recall_batch(jax.random.key(3), 256),
        recall_batch(jax.random.key(4), 256),
    )
    logits = jax.jit(plain.apply)(
        jax.jit(plain.init)(jax.random.key(5), tokens), jnp.concatenate([tokens, other])
    )
    np.testing.assert_array_equal(logits[:256, S:], logits[256:, S:])
    freq = np.bincount(np.asarray(c), minlength=NUM_CLASSES) / len(c)
    best_without_memory = -(freq * np.log(freq)).sum()
    assert best_without_memory > 0.95 * np.log(NUM_CLASSES)
    assert with_memory < 0.2 * best_without_memory, (with_memory, best_without_memory)


@pytest.mark.parametrize(
    "kwargs, length, match",
    [
        ({}, S * NSEG + 1, "not a multiple of segment_len"),
        ({"sensory_len": S + 1}, S * NSEG, "sensory_len"),
        ({"summary_source": "future"}, S * NSEG, "summary_source"),
        ({"summary_len": S + 1}, S * NSEG, "summary_len"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, length, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs).init(jax.random.key(0), jnp.zeros((1, length), jnp.int32))


def test_float_tokens_and_bad_config_arg_are_errors():
    with pytest.raises(ValueError, match="int"):
        make().init(jax.random.key(0), jnp.zeros((1, S * NSEG)))
    with pytest.raises(ValueError, match="expected one of"):
        load_config(CONFIG + ":memoryless")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """kjv_char from a fake `bible` program printing a few thousand characters of verses."""
    root = tmp_path_factory.mktemp("hmt_data")
    rng = np.random.default_rng(0)
    words = ["and", "the", "LORD", "said", "unto", "Moses", "in", "beginning", "God", "light"]
    lines = []
    for book in ("Ge", "Exo"):
        for v in range(1, 41):
            lines.append(f"{book}1:{v} " + " ".join(rng.choice(words, 8)) + ".")
    script = root / "bible"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + "\n".join(lines) + "\nEOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    lib.data.prepare(
        "kjv_char", root, seq_len=16, validation_fraction=0.2, test_fraction=0.2,
        command=str(script),
    )  # fmt: skip
    return str(root), lines


def test_token_stream_is_the_corpus_text(data_dir):
    root, lines = data_dir
    books = {}
    for line in lines:
        ref, verse = line.split(" ", 1)
        books.setdefault(ref.split("1:")[0], []).append(verse)
    corpus = "\n\n".join("\n".join(v) for v in books.values()) + "\n"
    meta = lib.data.info("kjv_char", root)
    vocab = text_lib.CharVocab.from_info(meta)
    for split in ("train", "test"):
        start, stop = meta["split_ranges"][split]
        stream = hmt_data.token_stream("kjv_char", split, root)
        whole_windows = (stop - start - 1) // 16 * 16 + 1  # the stored windows' coverage
        np.testing.assert_array_equal(stream, vocab.encode(corpus[start:stop])[:whole_windows])


@pytest.mark.claim
def test_smoke_training_run(data_dir, tmp_path):
    from lib.train.loop import train_and_evaluate

    config = load_config(CONFIG + ":hmt,smoke", [f"data.data_dir={data_dir[0]}"])
    result = train_and_evaluate(config, str(tmp_path), **build(config))
    assert result["step"] == config.train.num_steps
    bits = [result[f"test_bits_seg{n}"] for n in range(config.data.num_segments)]
    assert all(np.isfinite(b) and 0 < b < 10 for b in bits + [result["test_bits_per_token"]])

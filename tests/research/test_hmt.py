"""HMT (He et al., 2024): memory carries information across segments (and only through it),
the model is causal, the batched no-memory form equals reading segments one by one, the data
stream is the corpus text, bad settings fail clearly, and a smoke run of lib.train."""

import os
import stat

import jax
import jax.numpy as jnp
import numpy as np
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
    """`J[t, s]` = max |d(sum of the logits at position t)/d(embedding at s)|, `[L, L]`."""
    per_position = lambda x: model.apply(params, x, method="logits_from_embeddings").sum((0, 2))
    J_LxBxLxD = jax.jit(jax.jacrev(per_position))(x_BxLxD)
    return np.abs(np.asarray(J_LxBxLxD)).max(axis=(1, 3))


@pytest.fixture(scope="module")
def inputs():
    tokens = jax.random.randint(jax.random.key(0), (2, S * NSEG), 0, V)
    x = jax.random.normal(jax.random.key(1), (2, S * NSEG, D))
    return tokens, x


@pytest.mark.parametrize("sensory_len", [0, 3])
def test_memory_carries_earlier_segments_and_model_is_causal(inputs, sensory_len):
    tokens, x = inputs
    k = sensory_len
    future = np.triu(np.ones((S * NSEG, S * NSEG), bool), k=1)
    hmt = make(num_memories=2, sensory_len=k)
    J = position_jacobian(hmt, jax.jit(hmt.init)(jax.random.key(2), tokens), x)
    assert np.all(J[future] == 0.0), np.argwhere(J * future)  # causal, "previous" summaries
    assert np.all(np.diag(J) > 1e-6)
    # Segment 2 depends on segment 0, out of the sensory window's reach: through memory.
    assert J[2 * S : 3 * S, : S - k].max() > 1e-6
    assert J[S : 2 * S, : S - k].max() > 1e-6

    plain = make(num_memories=0, sensory_len=k)
    J = position_jacobian(plain, jax.jit(plain.init)(jax.random.key(2), tokens), x)
    assert np.all(J[future] == 0.0)
    # Without memory, nothing before the sensory window reaches a segment: exactly zero.
    for n in range(1, NSEG):
        assert np.all(J[n * S : (n + 1) * S, : n * S - k] == 0.0), n
        if k:
            assert J[n * S : (n + 1) * S, n * S - k : n * S].max() > 1e-6  # the sensory tokens act


def test_paper_prefix_summary_leaks_the_future(inputs):
    # Why "previous" is the default: the paper's summary of the segment's own first tokens
    # lets early positions see later tokens of the same segment through the recall weights
    # (from segment 2 on, when the cache holds two memories to weigh).
    tokens, x = inputs
    hmt = make(num_memories=2, summary_source="prefix")
    J = position_jacobian(hmt, jax.jit(hmt.init)(jax.random.key(4), tokens), x)
    t = 2 * S
    assert J[t, t + 1 : t + S // 2].max() > 1e-7


def test_batched_independent_segments_equal_one_by_one(inputs):
    tokens, x = inputs
    k = 3
    model = make(num_memories=0, sensory_len=k)
    params = jax.jit(model.init)(jax.random.key(5), tokens)
    fast = jax.jit(model.apply, static_argnames="method")(
        params, x, method="logits_from_embeddings"
    )
    read = jax.jit(
        lambda params, w: model.apply(params, w, method=lambda m, w: m.head(m.backbone(w)))
    )
    for n in range(NSEG):
        lo = max(n * S - k, 0)
        ref = read(params, x[:, lo : (n + 1) * S])[:, n * S - lo :]
        np.testing.assert_allclose(fast[:, n * S : (n + 1) * S], ref, rtol=1e-5, atol=1e-5)


def test_full_context_model_equals_backbone_on_whole_sequence(inputs):
    tokens, x = inputs
    model = make(num_memories=0, segment_len=S * NSEG)
    params = jax.jit(model.init)(jax.random.key(6), tokens)
    out = jax.jit(model.apply)(params, tokens)
    whole = lambda params, t: model.apply(
        params, t, method=lambda m, t: m.head(m.backbone(m.embed(t)))
    )
    ref = jax.jit(whole)(params, tokens)
    assert out.shape == (2, S * NSEG, V) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


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


def test_smoke_training_run(data_dir, tmp_path):
    from lib.train.loop import train_and_evaluate

    config = load_config(CONFIG + ":hmt,smoke", [f"data.data_dir={data_dir[0]}"])
    result = train_and_evaluate(config, str(tmp_path), **build(config))
    assert result["step"] == config.train.num_steps
    bits = [result[f"test_bits_seg{n}"] for n in range(config.data.num_segments)]
    assert all(np.isfinite(b) and 0 < b < 10 for b in bits + [result["test_bits_per_token"]])

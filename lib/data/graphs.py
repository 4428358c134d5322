"""Graphs with node labels for node classification (ForwardGNN, Park et al. 2024): Zachary's
karate club (networkx) and stochastic block models (Holland et al. 1983).

A data set is one graph (transductive): every split holds that graph, with `mask` [N]
marking the nodes whose labels count in that split (disjoint across splits, stratified).
Features: `adjacency` float32 [N, N] (symmetric, no self-loops), `features` float32 [N, F],
`labels` int32 [N], `mask` float32 [N].
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from lib.data.base import Builder
from lib.data.images import stratified_split


def sbm_graph(rng, sizes, p_in: float, p_out: float) -> tuple[np.ndarray, np.ndarray]:
    """(adjacency uint8 [N, N], block labels [N]) of a stochastic block model."""
    import networkx as nx

    probs = [[p_in if i == j else p_out for j in range(len(sizes))] for i in range(len(sizes))]
    g = nx.stochastic_block_model(list(sizes), probs, seed=int(rng.integers(2**31)))
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)]).astype(np.int32)
    return nx.to_numpy_array(g, nodelist=range(sum(sizes)), dtype=np.uint8), labels


def karate_graph() -> tuple[np.ndarray, np.ndarray]:
    """(adjacency [34, 34], labels [34]: 0 Mr. Hi's club, 1 the Officer's) from networkx."""
    import networkx as nx

    g = nx.karate_club_graph()
    labels = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(34)], np.int32)
    return (nx.to_numpy_array(g, nodelist=range(34), weight=None) > 0).astype(np.uint8), labels


class _NodeClassification(Builder, skip_registration=True):
    DEFAULTS = {"validation_fraction": 0.2, "test_fraction": 0.4, "seed": 0}
    SOURCE = "networkx"

    def graph(self):
        """(adjacency [N, N], features [N, F], labels [N])."""
        raise NotImplementedError

    def _load(self):
        if not hasattr(self, "_graph"):
            self._graph = self.graph()
        return self._graph

    def _features(self):
        adj, feats, _ = self._load()
        n = adj.shape[0]
        return tfds.features.FeaturesDict(
            {
                "adjacency": tfds.features.Tensor(shape=(n, n), dtype=np.float32),
                "features": tfds.features.Tensor(shape=feats.shape, dtype=np.float32),
                "labels": tfds.features.Tensor(shape=(n,), dtype=np.int32),
                "mask": tfds.features.Tensor(shape=(n,), dtype=np.float32),
            }
        )

    def _metadata(self):
        adj, feats, labels = self._load()
        return {
            "task": "node_classification",
            "num_nodes": int(adj.shape[0]),
            "num_edges": int(adj.sum() // 2),
            "feature_dim": int(feats.shape[1]),
            "num_classes": int(labels.max() + 1),
        }

    def _splits(self):
        adj, feats, labels = self._load()
        c = self.cfg
        fractions = {
            "test": c["test_fraction"],
            "validation": c["validation_fraction"],
            "train": 1.0,
        }
        idx = stratified_split(labels, fractions, c["seed"])

        def one(split):
            mask = np.zeros(len(labels), np.float32)
            mask[idx[split]] = 1
            yield (
                0,
                {
                    "adjacency": adj.astype(np.float32),
                    "features": feats.astype(np.float32),
                    "labels": labels.astype(np.int32),
                    "mask": mask,
                },
            )

        return {s: one(s) for s in ("train", "validation", "test") if len(idx[s])}


class KarateClub(_NodeClassification):
    """Zachary's karate club (34 members, the split into two clubs); features: one-hot ids."""

    def graph(self):
        adj, labels = karate_graph()
        return adj, np.eye(len(labels), dtype=np.float32), labels


class Sbm(_NodeClassification):
    """A stochastic block model; node features are a noisy one-hot of the block
    (`feature_noise` standard deviation) in `feature_dim` dimensions."""

    DEFAULTS = {
        **_NodeClassification.DEFAULTS,
        "num_blocks": 4,
        "block_size": 100,
        "p_in": 0.05,
        "p_out": 0.01,
        "feature_dim": 16,
        "feature_noise": 1.0,
    }

    def graph(self):
        c = self.cfg
        rng = np.random.default_rng([c["seed"], 5])
        adj, labels = sbm_graph(rng, [c["block_size"]] * c["num_blocks"], c["p_in"], c["p_out"])
        centres = rng.normal(size=(c["num_blocks"], c["feature_dim"]))
        feats = centres[labels] + c["feature_noise"] * rng.normal(
            size=(len(labels), c["feature_dim"])
        )
        return adj, feats.astype(np.float32), labels

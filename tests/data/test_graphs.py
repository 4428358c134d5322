"""Tests of the graph data: the karate club's known facts, SBM edge densities, disjoint
node masks across splits."""

import numpy as np

import lib.data as data


def _graph(name, root, split):
    return next(data.load(name, split, batch_size=1, shuffle=False, data_dir=root))


def test_karate_club(tmp_path):
    data.prepare("karate_club", tmp_path)
    meta = data.info("karate_club", tmp_path)
    assert meta["num_nodes"] == 34 and meta["num_edges"] == 78 and meta["num_classes"] == 2
    masks = [_graph("karate_club", tmp_path, s)["mask"][0] for s in ("train", "validation", "test")]
    total = np.sum(masks, axis=0)
    assert np.all(total == 1)  # every node in exactly one split
    g = _graph("karate_club", tmp_path, "train")
    adj, labels = g["adjacency"][0], g["labels"][0]
    np.testing.assert_array_equal(adj, adj.T)
    assert np.all(np.diag(adj) == 0) and labels.sum() == 17  # 17 members follow the Officer
    assert adj.sum(axis=1)[33] == 17 and adj.sum(axis=1)[0] == 16  # the two leaders' degrees


def test_sbm_densities_and_features(tmp_path):
    data.prepare("sbm", tmp_path, num_blocks=3, block_size=60, p_in=0.2, p_out=0.02)
    g = _graph("sbm", tmp_path, "test")
    adj, labels, feats = g["adjacency"][0], g["labels"][0], g["features"][0]
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(labels), dtype=bool)
    p_in = adj[same & off_diag].mean()
    p_out = adj[~same].mean()
    assert abs(p_in - 0.2) < 0.03 and abs(p_out - 0.02) < 0.01
    # Features cluster by block: nearest class centroid classifies most nodes correctly.
    centroids = np.stack([feats[labels == k].mean(0) for k in range(3)])
    pred = np.argmin(((feats[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert np.mean(pred == labels) > 0.9
    assert np.bincount(labels[g["mask"][0] == 1]).min() > 0  # stratified test nodes

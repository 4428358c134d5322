"""Tests of Sudoku (unique solutions checked by the solver, difficulty knob) and mazes
(shortest paths checked by BFS)."""

import numpy as np
import pytest

from lib.data import puzzles as P


def test_solver_counts_and_solves():
    rng = np.random.default_rng(1)
    solution = P.random_solution(rng, 3)
    assert P.is_valid_solution(solution, 3)
    assert P.count_solutions(solution, 3) == (1, pytest.approx(solution))
    empty = np.zeros((4, 4), int)
    assert P.count_solutions(empty, 2, limit=1000)[0] == 288  # the number of 4x4 Sudokus
    bad = solution.copy()
    bad[0, 0], bad[0, 1] = bad[0, 1], bad[0, 0]
    assert not P.is_valid_solution(bad, 3) and P.count_solutions(bad, 3)[0] == 0


def test_sudoku_unique_and_difficulty(build):
    _, easy = build(
        "sudoku", subdir="easy", min_clues=36, num_train=6, num_validation=2, num_test=2
    )
    meta, hard = build(
        "sudoku", subdir="hard", min_clues=24, num_train=6, num_validation=2, num_test=2
    )
    assert meta["seq_len"] == 81 and meta["vocab_size"] == 10
    for ex in hard["train"] + hard["test"]:
        x, y, m = ex["inputs"].reshape(9, 9), ex["targets"].reshape(9, 9), ex["mask"]
        count, solved = P.count_solutions(x, 3)
        assert count == 1 and np.array_equal(solved, y) and P.is_valid_solution(y, 3)
        np.testing.assert_array_equal(x[x > 0], y[x > 0])  # clues agree with the solution
        np.testing.assert_array_equal(m, (ex["inputs"] == 0).astype(np.float32))
    clues = lambda recs: np.mean([np.sum(e["inputs"] > 0) for e in recs])
    assert clues(easy["train"]) == 36 and clues(hard["train"]) < 30
    solutions = [e["targets"].tobytes() for recs in hard.values() for e in recs]
    assert len(set(solutions)) == len(solutions)  # splits share no solution grid


def test_mazes_paths_are_shortest(build):
    meta, splits = build("maze", height=5, width=6, num_train=10, num_validation=3, num_test=3)
    h, w = meta["grid_shape"]
    assert (h, w) == (11, 13)
    for ex in splits["train"] + splits["test"]:
        x, y = ex["inputs"].reshape(h, w), ex["targets"].reshape(h, w)
        start, goal = np.argwhere(x == P.START)[0], np.argwhere(x == P.GOAL)[0]
        path = {tuple(p) for p in np.argwhere(y == P.PATH)}
        best = P.bfs_path(x, start, goal)
        assert len(path) == len(best) - 2  # as short as BFS
        # The labelled cells form a connected walk from start to goal.
        walk = P.bfs_path(np.where((y == P.PATH) | (x >= P.START), P.OPEN, P.WALL), start, goal)
        assert walk is not None and len(walk) == len(best)
        # A perfect maze is a tree: open cells = passages + 1 (so the path is unique).
        open_cells = x != P.WALL
        edges = np.sum(open_cells[1:] & open_cells[:-1]) + np.sum(
            open_cells[:, 1:] & open_cells[:, :-1]
        )
        assert open_cells.sum() == edges + 1
        assert np.all((ex["mask"] == 1) == open_cells.reshape(-1))
    seen = [{e["inputs"].tobytes() for e in recs} for recs in splits.values()]
    assert sum(map(len, seen)) == 16


def test_mazes_with_loops_still_shortest():
    rng = np.random.default_rng(3)
    grid = P.random_maze(rng, 6, 6, extra_openings=0.3)
    open_cells = grid != P.WALL
    edges = np.sum(open_cells[1:] & open_cells[:-1]) + np.sum(
        open_cells[:, 1:] & open_cells[:, :-1]
    )
    assert edges > open_cells.sum() - 1  # loops exist
    path = P.bfs_path(grid, (1, 1), (11, 11))
    # Manhattan distance is a lower bound; BFS can't beat it and the path steps are adjacent.
    assert len(path) - 1 >= 20
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in zip(path, path[1:]))

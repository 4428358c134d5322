"""Hierarchical Reasoning Model (Wang et al. 2025): an in-memory 4x4 Sudoku set, 1000 puzzles.

`lib.data`'s `sudoku` keeps one solution grid per split and its generator reaches only a few
dozen 4x4 grids, so 1000 distinct 4x4 training puzzles cannot be drawn from it. Here all 288
4x4 solution grids are enumerated, split into disjoint train / test grids (test grids are never
seen in training), and each puzzle blanks cells while the solution stays unique
(`lib.data.puzzles.count_solutions`).
"""

import itertools

import numpy as np

from lib.data.puzzles import count_solutions, is_valid_solution


def all_grids() -> np.ndarray:
    """Every valid 4x4 Sudoku solution, int [288, 4, 4], in a fixed order (row by row with
    pruning: columns distinct, and each 2x2 box distinct once its two rows are placed)."""
    rows = list(itertools.permutations(range(1, 5)))

    def cols_ok(placed, r):
        return all(r[i] not in [p[i] for p in placed] for i in range(4))

    def box_ok(top, bottom):
        return {top[0], top[1], bottom[0], bottom[1]} == {1, 2, 3, 4}

    out = []
    for a in rows:
        for b in (b for b in rows if cols_ok([a], b) and box_ok(a, b)):
            for c in (c for c in rows if cols_ok([a, b], c)):
                for d in (d for d in rows if cols_ok([a, b, c], d) and box_ok(c, d)):
                    g = np.array([a, b, c, d])
                    assert is_valid_solution(g, 2)
                    out.append(g)
    return np.stack(out)


def make_puzzle(rng, solution: np.ndarray, min_clues: int) -> np.ndarray:
    """Blank cells of `solution` in random order while the solution stays unique."""
    puzzle = solution.copy()
    clues = 16
    for cell in rng.permutation(16):
        if clues <= min_clues:
            break
        r, c = divmod(int(cell), 4)
        keep, puzzle[r, c] = puzzle[r, c], 0
        if count_solutions(puzzle, 2)[0] == 1:
            clues -= 1
        else:
            puzzle[r, c] = keep
    return puzzle


def make_split(
    num_train: int = 1000,
    num_test: int = 200,
    min_clues: int = 4,
    seed: int = 0,
    test_grids: int = 58,
) -> dict:
    """{"train", "test"}: dicts of `inputs` (0 = blank), `targets` int [n, 16], `mask` float."""
    rng = np.random.default_rng(seed)
    grids = all_grids()[rng.permutation(288)]
    out = {}
    for split, pool, n in (
        ("train", grids[test_grids:], num_train),
        ("test", grids[:test_grids], num_test),
    ):
        seen, inputs, targets = set(), [], []
        while len(inputs) < n:
            sol = pool[rng.integers(len(pool))]
            p = make_puzzle(rng, sol, min_clues)
            if p.tobytes() in seen:
                continue
            seen.add(p.tobytes())
            inputs.append(p.reshape(-1))
            targets.append(sol.reshape(-1))
        x = np.stack(inputs).astype(np.int32)
        out[split] = {
            "inputs": x,
            "targets": np.stack(targets).astype(np.int32),
            "mask": (x == 0).astype(np.float32),
        }
    return out

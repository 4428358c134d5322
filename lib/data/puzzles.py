"""Puzzles for reasoning models (Hierarchical Reasoning Model, Wang et al. 2025): Sudoku with
unique solutions and a difficulty knob, and mazes with shortest-path labels.

Sudoku: `inputs` int32 [n*n] (0 blank, 1..n digits), `targets` the solution, `mask` 1 on the
blanks; n = box**2. Every puzzle has exactly one solution, checked by `count_solutions`.
Mazes: grids of cells (WALL, OPEN, START, GOAL); `targets` marks the shortest path (PATH)
found by breadth-first search, `mask` is 1 on every non-wall cell.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from lib.data.base import GeneratedBuilder, sequence_features, split_counts


# ----------------------------------------------------------------------------- sudoku
def count_solutions(grid: np.ndarray, box: int, limit: int = 2):
    """Counts solutions of a Sudoku (stopping at `limit`) by backtracking on the most
    constrained cell.

    Args:
      grid: int [n, n], 0 for blanks, n = box**2.
      box: side of a box.
      limit: stop once this many solutions are found.

    Returns:
      (count, first solution or None).
    """
    n = box * box
    full = (1 << (n + 1)) - 2  # bits 1..n
    g = np.array(grid, dtype=int).reshape(n, n)
    rows, cols, boxes = [0] * n, [0] * n, [0] * n
    blanks = []
    for r in range(n):
        for c in range(n):
            v = int(g[r, c])
            if v:
                bit = 1 << v
                b = (r // box) * box + c // box
                if rows[r] & bit or cols[c] & bit or boxes[b] & bit:
                    return 0, None
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
            else:
                blanks.append((r, c))
    found = [0, None]

    def search(remaining):
        if not remaining:
            found[0] += 1
            if found[1] is None:
                found[1] = g.copy()
            return found[0] >= limit
        best, best_free, best_count = None, 0, n + 1
        for i, (r, c) in enumerate(remaining):
            free = full & ~(rows[r] | cols[c] | boxes[(r // box) * box + c // box])
            count = bin(free).count("1")
            if count < best_count:
                best, best_free, best_count = i, free, count
                if count <= 1:
                    break
        if best_count == 0:
            return False
        r, c = remaining[best]
        b = (r // box) * box + c // box
        rest = remaining[:best] + remaining[best + 1 :]
        free = best_free
        while free:
            bit = free & -free
            free ^= bit
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            g[r, c] = bit.bit_length() - 1
            stop = search(rest)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            g[r, c] = 0
            if stop:
                return True
        return False

    search(blanks)
    return found[0], found[1]


def is_valid_solution(grid: np.ndarray, box: int) -> bool:
    """True when every row, column and box of a full grid holds 1..n once."""
    n = box * box
    g = np.asarray(grid).reshape(n, n)
    want = set(range(1, n + 1))
    boxes = g.reshape(box, box, box, box).transpose(0, 2, 1, 3).reshape(n, n)
    return all(set(line) == want for part in (g, g.T, boxes) for line in part.tolist())


def random_solution(rng, box: int) -> np.ndarray:
    """A random valid full grid: a base pattern under random validity-preserving symmetries
    (band, row-in-band, stack and column permutations, transposition, digit relabelling).
    Not uniform over all grids; puzzles made from it differ in which clues remain."""
    n = box * box
    base = np.array([[(box * (r % box) + r // box + c) % n for c in range(n)] for r in range(n)])
    bands = rng.permutation(box)
    rows = np.concatenate([b * box + rng.permutation(box) for b in bands])
    stacks = rng.permutation(box)
    cols = np.concatenate([s * box + rng.permutation(box) for s in stacks])
    grid = base[rows][:, cols]
    if rng.random() < 0.5:
        grid = grid.T
    return rng.permutation(n)[grid] + 1


def make_puzzle(rng, box: int, min_clues: int):
    """Removes clues from a random solution, in random order, while the solution stays unique,
    stopping at `min_clues` (the difficulty knob: fewer clues are harder)."""
    solution = random_solution(rng, box)
    puzzle = solution.copy()
    n = box * box
    clues = n * n
    for cell in rng.permutation(n * n):
        if clues <= min_clues:
            break
        r, c = divmod(int(cell), n)
        keep = puzzle[r, c]
        puzzle[r, c] = 0
        if count_solutions(puzzle, box)[0] == 1:
            clues -= 1
        else:
            puzzle[r, c] = keep
    return puzzle, solution


class Sudoku(GeneratedBuilder):
    """Sudoku puzzles with a unique solution; `min_clues` sets the difficulty (box=3: 17 is
    the fewest possible, ~22-25 is what removal usually reaches)."""

    DEFAULTS = {"box": 3, "min_clues": 30, **split_counts(1000, 100, 100)}

    def validate_config(self, cfg):
        if cfg["box"] not in (2, 3, 4):
            raise ValueError("box must be 2, 3 or 4")

    def _features(self):
        return sequence_features(self.cfg["box"] ** 4)

    def _metadata(self):
        n = self.cfg["box"] ** 2
        return {
            "task": "sequence",
            "grid_size": n,
            "seq_len": n * n,
            "vocab_size": n + 1,
            "min_clues": self.cfg["min_clues"],
        }

    def fingerprint(self, ex):
        return (ex["targets"],)  # puzzles of one solution grid stay in one split

    def example(self, rng, split):
        puzzle, solution = make_puzzle(rng, self.cfg["box"], self.cfg["min_clues"])
        inputs = puzzle.reshape(-1).astype(np.int32)
        return {
            "inputs": inputs,
            "targets": solution.reshape(-1).astype(np.int32),
            "mask": (inputs == 0).astype(np.float32),
        }


# ----------------------------------------------------------------------------- mazes
WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5


def random_maze(rng, height: int, width: int, extra_openings: float = 0.0) -> np.ndarray:
    """A maze of (2h+1) x (2w+1) cells by randomized depth-first search (a perfect maze: one
    path between any two cells), then a fraction of inner walls knocked down to add loops."""
    grid = np.full((2 * height + 1, 2 * width + 1), WALL, np.int32)
    seen = np.zeros((height, width), bool)
    stack = [(int(rng.integers(height)), int(rng.integers(width)))]
    seen[stack[0]] = True
    grid[2 * stack[0][0] + 1, 2 * stack[0][1] + 1] = OPEN
    while stack:
        r, c = stack[-1]
        nbrs = [
            (r + dr, c + dc)
            for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))
            if 0 <= r + dr < height and 0 <= c + dc < width and not seen[r + dr, c + dc]
        ]
        if not nbrs:
            stack.pop()
            continue
        nr, nc = nbrs[rng.integers(len(nbrs))]
        seen[nr, nc] = True
        grid[2 * nr + 1, 2 * nc + 1] = OPEN
        grid[r + nr + 1, c + nc + 1] = OPEN
        stack.append((nr, nc))
    if extra_openings > 0:
        inner = [
            (r, c)
            for r in range(1, 2 * height)
            for c in range(1, 2 * width)
            if grid[r, c] == WALL and (r % 2) != (c % 2)
        ]
        for i in rng.permutation(len(inner))[: int(extra_openings * len(inner))]:
            grid[inner[i]] = OPEN
    return grid


def bfs_path(grid: np.ndarray, start, goal):
    """A shortest path (list of (row, col), start to goal) through non-wall cells, or None."""
    prev = {tuple(start): None}
    queue = deque([tuple(start)])
    while queue:
        cell = queue.popleft()
        if cell == tuple(goal):
            path = []
            while cell is not None:
                path.append(cell)
                cell = prev[cell]
            return path[::-1]
        r, c = cell
        for nxt in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if (
                0 <= nxt[0] < grid.shape[0]
                and 0 <= nxt[1] < grid.shape[1]
                and grid[nxt] != WALL
                and nxt not in prev
            ):
                prev[nxt] = cell
                queue.append(nxt)
    return None


class Maze(GeneratedBuilder):
    """Mazes with start and goal cells; the label is the BFS shortest path between them."""

    DEFAULTS = {
        "height": 7,
        "width": 7,
        "extra_openings": 0.0,
        "min_path": 10,
        **split_counts(1000, 100, 100),
    }

    def _features(self):
        side_h, side_w = 2 * self.cfg["height"] + 1, 2 * self.cfg["width"] + 1
        return sequence_features(side_h * side_w)

    def _metadata(self):
        h, w = 2 * self.cfg["height"] + 1, 2 * self.cfg["width"] + 1
        return {
            "task": "sequence",
            "grid_shape": [h, w],
            "seq_len": h * w,
            "vocab_size": 6,
            "tokens": {"wall": WALL, "open": OPEN, "start": START, "goal": GOAL, "path": PATH},
        }

    def example(self, rng, split):
        c = self.cfg
        grid = random_maze(rng, c["height"], c["width"], c["extra_openings"])
        cells = np.argwhere(grid == OPEN)
        for _ in range(100):
            start, goal = cells[rng.choice(len(cells), 2, replace=False)]
            path = bfs_path(grid, start, goal)
            if len(path) >= min(c["min_path"], grid.size // 4):
                break
        inputs = grid.copy()
        inputs[tuple(start)], inputs[tuple(goal)] = START, GOAL
        targets = inputs.copy()
        for cell in path[1:-1]:
            targets[cell] = PATH
        return {
            "inputs": inputs.reshape(-1),
            "targets": targets.reshape(-1),
            "mask": (grid.reshape(-1) != WALL).astype(np.float32),
        }

"""Hierarchical Reasoning Model (Wang et al. 2025): 4x4 Sudoku and 9x9-cell mazes, 1000 examples.

Commands (one run per task x model, about 1-3 minutes each on a loaded 2-core CPU; the maze
task needs `python -m lib.data prepare maze --set height=3 --set width=3 --set min_path=5
--set num_train=1000 --set num_validation=100 --set num_test=500`):

    python -m launch.train --config=research/hrm/configs/puzzles.py:sudoku,hrm \
        --workdir=workdirs/hrm/sudoku_hrm
    python -m launch.hrm --config=research/hrm/configs/puzzles.py:sudoku,all \
        --workdir=workdirs/hrm/sudoku

`arg` is "<task>[,<model>][,smoke]" with task in {sudoku, maze} and model in
{hrm, flat, transformer}; "all" (for `launch.hrm`) trains the three as a study.
Expected (test, see research/hrm/README.md): HRM >= flat > Transformer in exact accuracy.
"""

import ml_collections

from lib.train.config import base_config, parse_arg

TASKS = ("sudoku", "maze")
MODELS = ("hrm", "flat", "transformer", "all")


def get_config(arg: str = "sudoku,hrm") -> ml_collections.ConfigDict:
    words = parse_arg(arg, {"task": (TASKS, "sudoku"), "model": (MODELS, "hrm")}, ("smoke",))
    task, kind, smoke = words["task"], words["model"], words["smoke"]
    c = base_config()
    c.project = "hrm"
    c.seed = 0
    c.model.kind = kind
    c.model.dim = 64
    c.model.num_heads = 4
    c.model.h_depth = 2
    c.model.l_depth = 2
    c.model.cycles = 2  # N
    c.model.l_steps = 2  # T
    c.model.segments = 3  # M, deep-supervision segments
    c.model.q_weight = 0.5
    # Train the Q head's continue logit on the Q-learning target too (one more forward pass
    # per segment); off in the runs of the README's main table, which predate it.
    c.model.q_continue = False
    # Training-time ACT: each example leaves the batch's loss once its Q head says halt, but
    # never before M_min segments; with probability explore_prob (epsilon) M_min is drawn
    # uniformly from {2..M}, else 1. Off: every example trains all M segments.
    c.model.train_halting = False
    c.model.explore_prob = 0.1
    c.data.name = task
    c.data.data_dir = ""
    c.data.batch_size = 50
    if task == "sudoku":  # 4x4 (box 2): 9x9 is out of reach on a 2-core CPU in minutes.
        # In memory (research/hrm/sudoku4.py): lib.data's sudoku reaches too few 4x4 grids.
        c.data.name = "sudoku4"
        c.data.builder_kwargs = ml_collections.ConfigDict(
            {"num_train": 1000, "num_test": 200, "min_clues": 4}
        )
    else:  # 3x3-cell mazes drawn on a 7x7 grid (the paper: 30x30)
        c.data.builder_kwargs = ml_collections.ConfigDict(
            {"height": 3, "width": 3, "min_path": 5, "num_train": 1000, "num_validation": 100,
             "num_test": 500}
        )  # fmt: skip
    c.optimizer.learning_rate = 1e-3
    c.optimizer.warmup_steps = 50  # optimizer updates: M per batch
    c.optimizer.weight_decay = 0.1
    c.train.num_steps = 200  # batches
    c.train.log_every = 50
    c.train.eval_every = 0
    # The schedule counts updates (M per batch): it decays over num_steps x M (x 1 for the
    # Transformer, which runs one segment). A reference: overriding num_steps moves it.
    updates_per_batch = 1 if kind == "transformer" else c.model.get_ref("segments")
    c.optimizer.decay_steps = c.train.get_ref("num_steps") * updates_per_batch
    if smoke:
        c.model.dim = 16
        c.model.num_heads = 2
        c.model.h_depth = c.model.l_depth = 1
        c.model.segments = 2
        c.data.batch_size = 8
        c.data.builder_kwargs.num_train = 32
        c.data.builder_kwargs.num_test = 16
        if task == "maze":
            c.data.builder_kwargs.num_validation = 8
        c.optimizer.warmup_steps = 2
        c.train.num_steps = 3
        c.train.log_every = 1
    return c

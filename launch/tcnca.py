"""Launch a TCNCA study (Terzic et al., 2023): MQAR associative recall over recurrences,
sequence lengths and vocabulary sizes.

  python -m launch.tcnca --config=research/tcnca/configs/recall.py[:smoke] --workdir=DIR

Every recurrence of `config.study.recurrences` at every length of `study.lengths` and number
of keys of `study.num_keys` (and seed of `study.seeds`) is one run of `launch.train.run` in
`DIR/<recurrence>_len<L>_keys<K>[/seed<s>]` (`lib.train.study.run_study`); `DIR/results.json`
and `results.md` hold the table. One run alone: `python -m launch.train --config=...`.
"""

from launch._common import main


def variants(config) -> list[tuple[str, dict]]:
    """`(name, overrides)` of every (length, keys, recurrence) cell of the study."""
    return [
        (f"{rec}_len{int(length)}_keys{int(keys)}", {
            "model.recurrence": rec, "data.options.seq_len": int(length),
            "data.options.num_keys": int(keys), "data.options.num_values": int(keys),
        })
        for length in config.study.lengths
        for keys in config.study.num_keys
        for rec in config.study.recurrences
    ]  # fmt: skip


def run(config, workdir: str) -> list[dict]:
    """The study (module docstring); one row per run."""
    from launch.train import run as run_one
    from lib.train.study import run_study

    return run_study(
        config,
        workdir,
        variants=variants(config),
        run=run_one,
        seeds=tuple(config.study.seeds) or None,
        keys=("test_accuracy",),
        name="recall",
    )


if __name__ == "__main__":
    main(run, "research/tcnca/configs/*.py", project="tcnca", workdir_required=True)

"""Results tables of the research launch scripts: `report` prints named tables and writes
`results.json` / `results.md`; `markdown_table` formats one. Both live in `lib.train.study`
(with the study runner); this module keeps the launchers' import of them in one place."""

from lib.train.study import markdown_table, report

__all__ = ["markdown_table", "report"]

"""The layout of a sweep's workdir: the result files a run writes (and a resume checks for)."""

RESULT_FILES = (
    "config.json",
    "members.csv",
    "history.csv",
    "summary.csv",
    "comparison.csv",
    "groups.csv",
    "group_history.csv",
    "rungs.csv",
    "pbt.csv",
    "report.md",
)

"""One colour per configuration across every plot and page of a run.

Configurations are coloured by their rank in ``res.summary`` (best first), so the
best configuration has the same colour in history.png, groups.png and
report.html. Colours are matplotlib's ``tab10`` as hex strings, with no
matplotlib import (the HTML report uses them too).
"""

from __future__ import annotations

TAB10 = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def config_colors(res) -> dict[int, str]:
    """``{config_id: "#rrggbb"}`` for every configuration of ``res.summary``,
    by rank; past ten configurations the palette repeats."""
    ids = [int(c) for c in res.summary["config_id"]] if "config_id" in res.summary else []
    return {cid: TAB10[i % len(TAB10)] for i, cid in enumerate(ids)}

"""report.html: one self-contained page per sweep, blend and analysis output
folder (inline SVG charts, a small inline script, no network).

Why no plotting library: an offline-embeddable one (plotly.js) adds about
3.5 MB to every page and a dependency; inline SVG with native hover tips and a
60-line script gives the sortable table, linked highlighting and hover
configs at a few hundred kB for hundreds of members.
"""

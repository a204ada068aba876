"""The shell of a report.html: one self-contained file (CSS and the script inline,
no network), a sortable and filterable table, and report.md rendered as HTML.

The script is small on purpose: sort a table by a column (numbers by value),
filter its rows by text, link a hovered table row to the member's curves and
points (``data-member``), and show a tooltip for any SVG mark with ``data-tip``.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re

import numpy as np
import pandas as pd

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:12px 24px}header h1{margin:0;font-size:20px}
nav a{color:#b2ebf2;margin-right:14px;text-decoration:none}
main{padding:8px 24px 40px;max-width:1400px}section{margin:18px 0 28px}
h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px}
.note{color:#555}.charts{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;background:#fff;border:1px solid #e0e0e0;padding:6px}figcaption{font-size:12px;color:#444}
table{border-collapse:collapse;font-size:12.5px;background:#fff}
th,td{border:1px solid #e0e0e0;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#eceff1;position:sticky;top:0}table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.t,th.t{text-align:left}tr.hl td{background:#fff59d}.scroll{max-height:560px;overflow:auto}
.filter{margin:6px 0;padding:4px 8px;width:320px}.count{margin-left:10px;color:#555}
svg .hl{stroke-width:3!important;opacity:1!important;r:6}svg text{font-size:11px;fill:#333}
.key span{display:inline-block;margin-right:14px;font-size:12px}.key i{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:-2px}
#tip{position:fixed;pointer-events:none;background:#263238;color:#fff;font-size:12px;padding:4px 7px;
border-radius:3px;display:none;white-space:pre;z-index:9}
.md table{margin:8px 0}.md code{background:#eceff1;padding:0 3px}img{max-width:100%}
"""

_JS = """
(function(){
function key(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''){var x=parseFloat(v);
 if(!isNaN(x))return [0,x];}return [1,td.textContent.toLowerCase()];}
function cmp(a,b){if(a[0]!==b[0])return a[0]-b[0];return a[1]<b[1]?-1:a[1]>b[1]?1:0;}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
  var asc=th.getAttribute('aria-sort')!=='ascending';
  t.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(r,s){var c=cmp(key(r.cells[i]),key(s.cells[i]));return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r);});});});});
document.querySelectorAll('input.filter').forEach(function(inp){
 var t=document.getElementById(inp.getAttribute('data-table')),out=inp.nextElementSibling;
 inp.addEventListener('input',function(){var q=inp.value.toLowerCase().split(/\\s+/).filter(Boolean),n=0;
  Array.prototype.forEach.call(t.tBodies[0].rows,function(r){var s=r.textContent.toLowerCase();
   var ok=q.every(function(w){return s.indexOf(w)>=0;});r.style.display=ok?'':'none';n+=ok;});
  out.textContent=n+' of '+t.tBodies[0].rows.length+' rows';});});
function mark(m,on){document.querySelectorAll('[data-member="'+m+'"]').forEach(function(e){
 e.classList.toggle('hl',on);});}
document.querySelectorAll('tr[data-member]').forEach(function(r){var m=r.getAttribute('data-member');
 r.addEventListener('mouseenter',function(){mark(m,true);});
 r.addEventListener('mouseleave',function(){mark(m,false);});});
var tip=document.getElementById('tip');
document.addEventListener('mousemove',function(e){var el=e.target.closest?e.target.closest('[data-tip]'):null;
 if(!el){tip.style.display='none';return;}tip.textContent=el.getAttribute('data-tip');
 tip.style.display='block';tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});
})();
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    """A table cell's text: numbers to 5 significant digits, missing as empty."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else f"{float(value):.5g}"
    return str(value)


def _sort_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and not (
        isinstance(value, float) and math.isnan(value)
    ):
        return repr(float(value))
    return ""


def table(df: pd.DataFrame, table_id: str, member_col: str | None = None, filter_box: bool = True) -> str:
    """A sortable table of ``df`` (one ``<tr>`` per row) with a text filter box.

    Numeric cells carry their value in ``data-v`` so sorting is by value. With
    ``member_col``, each row carries ``data-member`` for linked highlighting.
    """
    head = "".join(
        f'<th class="{"" if pd.api.types.is_numeric_dtype(df[c]) else "t"}">{esc(c)}</th>' for c in df.columns
    )
    rows = []
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    for rec in df.itertuples(index=False):
        attr = f' data-member="{esc(fmt(getattr(rec, member_col)))}"' if member_col else ""
        cells = "".join(
            f'<td data-v="{_sort_value(v)}">{esc(fmt(v))}</td>' if num else f'<td class="t">{esc(fmt(v))}</td>'
            for v, num in zip(rec, numeric)
        )
        rows.append(f"<tr{attr}>{cells}</tr>")
    box = (
        f'<input class="filter" data-table="{table_id}" placeholder="filter rows: words, e.g. diverged 0.01">'
        f'<span class="count">{len(df)} rows</span>'
        if filter_box
        else ""
    )
    return (
        f'{box}<div class="scroll"><table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _inline(text: str) -> str:
    text = esc(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def markdown(text: str) -> str:
    """report.md as HTML: the subset our reports use (headings, paragraphs,
    bullet lists, pipe tables, code spans, bold). Image lines are dropped:
    the page shows its own charts and inlines the PNGs in one section."""
    out, para, items, rows = [], [], [], []

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if rows:
            cells = [
                [c.strip() for c in r.strip().strip("|").split("|")] for r in rows if not re.match(r"^\|[-|: ]+\|?$", r)
            ]
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            rows.clear()

    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("!["):
            flush()
        elif s.startswith("#"):
            flush()
            level = min(len(s) - len(s.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{_inline(s.lstrip('#').strip())}</h{level}>")
        elif s.startswith("|"):
            if para or items:
                flush()
            rows.append(s)
        elif s.startswith(("- ", "* ")):
            if para or rows:
                flush()
            items.append(s[2:])
        elif items and line.startswith("  "):
            items[-1] += " " + s
        else:
            if rows or items:
                flush()
            para.append(s)
    flush()
    return '<div class="md">' + "\n".join(out) + "</div>"


def png_section(directory: str, names: list[str]) -> str:
    """The PNGs written beside the report, inlined as data URIs (self-contained)."""
    figs = []
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".png") and os.path.isfile(path):
            with open(path, "rb") as f:
                data = base64.b64encode(f.read()).decode()
            figs.append(
                f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{esc(name)}</figcaption></figure>"
            )
    return section("plots", "Static plots (the PNG files)", "".join(figs)) if figs else ""


def section(anchor: str, title: str, body: str, note: str = "") -> str:
    note = f'<p class="note">{note}</p>' if note else ""
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{note}{body}</section>'


def document(title: str, sections: list[str]) -> str:
    """The whole page: ``sections`` are HTML strings from ``section``."""
    anchors = re.findall(r'<section id="([^"]+)"><h2>([^<]+)</h2>', "".join(sections))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in anchors)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width"><title>{esc(title)}</title>'
        f"<style>{_CSS}</style></head><body><header><h1>{esc(title)}</h1><nav>{nav}</nav></header>"
        f'<main>{"".join(sections)}</main><div id="tip"></div><script>{_JS}</script></body></html>\n'
    )

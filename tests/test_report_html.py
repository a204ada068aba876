"""report.html: one self-contained page per sweep, blend and analysis folder.

The structure is checked by parsing the HTML; the behaviour (no console error,
sorting, filtering) in headless Chromium, which the test starts with
``--dump-dom`` on a copy of the page with a probe script added: the probe
records script errors from the first line on, clicks a column header twice
and types into the filter, and writes what it saw into the DOM. Without a
Chromium binary (Debian's ``chromium``; ``.ci/run`` installs it) the browser
test skips with the reason. Set JAXEXP_SCREENSHOTS=DIR to keep the screenshot.
"""

import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
from conftest import tiny_config

import jaxexp
from jaxexp.blending import demo
from jaxexp.search import space

# Every test reads the workdir of a real sweep (and a headless browser): end to end.
pytestmark = pytest.mark.slow


class _Cells(html.parser.HTMLParser):
    """Rows of the table with a given id: lists of cell texts."""

    def __init__(self, table_id):
        super().__init__()
        self.id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("id") == self.id
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _rows(page: str, table_id: str) -> list[list[str]]:
    p = _Cells(table_id)
    p.feed(page)
    return p.rows


def _self_contained(page: str) -> None:
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page loads something from the network"
    assert "<script src" not in page and '<link rel="stylesheet"' not in page


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("html") / "sweep")
    c = tiny_config(train={"lr": space.choice([1e-3, 3e-3, 1e-2, 3e-2, 1e-1])})
    c.sweep.seeds = 2
    c.engine.plots = True
    res = jaxexp.sweep(c, workdir=wd)
    return wd, res


def test_sweep_report_html_has_every_member_and_the_views(sweep_dir):
    wd, res = sweep_dir
    page = open(os.path.join(wd, "report.html")).read()
    _self_contained(page)
    rows = _rows(page, "member-table")
    header, body = rows[0], rows[1:]
    assert len(body) == len(res.members) == 10
    assert [int(r[header.index("member")]) for r in body] == res.members["member"].tolist()
    got = np.array([float(r[header.index("best_val_mse")]) for r in body])
    np.testing.assert_allclose(got, res.members["best_val_mse"], rtol=1e-4)  # cells show 5 significant digits
    assert "train.lr" in header
    for anchor in ("summary", "members", "curves", "params", "plots"):
        assert f'<section id="{anchor}">' in page
    # Every member has a curve and a point to hover, tagged for linked highlighting.
    for m in res.members["member"]:
        assert page.count('<polyline fill="none"') and f'data-member="{m}"' in page
    assert page.count("<circle") >= len(res.members)
    assert "data:image/png;base64," in page  # the PNGs are inlined, not linked


def test_blend_and_analysis_folders_have_report_html(tmp_path, sweep_dir):
    frame = demo.demo_data(n=300)
    bw = tmp_path / "blend"
    df = jaxexp.blend(frame, step=0.1, weights=demo.WEIGHTS, n_boot=20, n_folds=0, workdir=str(bw), progress=None)
    page = (bw / "report.html").read_text()
    _self_contained(page)
    assert len(_rows(page, "weighting-table")) - 1 == min(len(df), 500)
    assert page.count('stroke-width="2" data-tip=') == (df["source"] != "grid").sum()  # listed/exact/refined ringed
    a = jaxexp.analyze(sweep_dir[0])
    out = tmp_path / "analysis"
    jaxexp.analysis.write(a, str(out), plot=False)
    page = (out / "report.html").read_text()
    _self_contained(page)
    assert len(_rows(page, "configuration-table")) - 1 == len(a.configs)
    assert '<section id="importance">' in page


_PROBE_HEAD = """<script>window.__errors=[];addEventListener('error',function(e){__errors.push(String(e.message));});
var __ce=console.error;
console.error=function(){__errors.push(Array.prototype.join.call(arguments,' '));
__ce.apply(console,arguments);};
</script>"""

_PROBE_TAIL = """<script>(function(){
var t=document.getElementById('member-table'),h=t.tHead.rows[0].cells,col=-1;
for(var i=0;i<h.length;i++)if(h[i].textContent==='best_val_mse')col=i;
function values(){return Array.prototype.map.call(t.tBodies[0].rows,
 function(r){return parseFloat(r.cells[col].getAttribute('data-v'));});}
var before=values();h[col].click();var asc=values();h[col].click();var desc=values();
var f=document.querySelector('input.filter[data-table=member-table]');
f.value='0.03';f.dispatchEvent(new Event('input'));
var shown=Array.prototype.filter.call(t.tBodies[0].rows,function(r){return r.style.display!=='none';}).length;
var out=document.createElement('pre');out.id='probe';
out.textContent=JSON.stringify({errors:window.__errors,rows:before.length,before:before,asc:asc,desc:desc,shown:shown,
 svgs:document.querySelectorAll('svg').length});document.body.appendChild(out);})();</script>"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium binary (Debian package 'chromium'; .ci/run installs it)")


def _browser(exe: str, *args: str) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="jaxexp-chromium-")
    try:
        return subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_report_html_in_headless_chromium(sweep_dir, tmp_path):
    exe = _chromium()
    wd, res = sweep_dir
    page = open(os.path.join(wd, "report.html")).read()
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("<head>", "<head>" + _PROBE_HEAD, 1).replace("</body>", _PROBE_TAIL + "</body>", 1))
    run = _browser(exe, "--dump-dom", probed.as_uri())
    if run.returncode != 0 or "<html" not in run.stdout:
        pytest.skip(f"Chromium did not start: {run.stderr.strip().splitlines()[-1:] or run.returncode}")
    m = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert m, "the page's script did not run to the end"
    got = json.loads(html.unescape(m.group(1)))
    assert got["errors"] == []
    assert got["rows"] == len(res.members)
    assert got["asc"] == sorted(got["before"]) and got["desc"] == sorted(got["before"], reverse=True)
    # The filter keeps the rows whose text holds "0.03": at least the two seeds of lr=0.03.
    expect = sum("0.03" in "".join(row) for row in _rows(page, "member-table")[1:])
    assert got["shown"] == expect and 2 <= expect < len(res.members)
    assert got["svgs"] >= 3  # curves and metric-vs-parameter charts drew
    shot = tmp_path / "report.png"
    _browser(exe, "--window-size=1400,2000", f"--screenshot={shot}", f"file://{os.path.join(wd, 'report.html')}")
    assert shot.exists() and shot.stat().st_size > 10_000
    if os.environ.get("JAXEXP_SCREENSHOTS"):
        os.makedirs(os.environ["JAXEXP_SCREENSHOTS"], exist_ok=True)
        shutil.copy(shot, os.path.join(os.environ["JAXEXP_SCREENSHOTS"], "sweep_report.png"))

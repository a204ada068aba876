"""Inline SVG charts for report.html: a 2-D chart with linear/log/category axes
(lines, bands, points with hover tips), a horizontal bar chart and a colour
scale. Pure string building; coordinates in pixels, data in its own units."""

from __future__ import annotations

import math

import numpy as np

from jaxexp.webreport.page import esc, fmt

_PAD = (58, 14, 22, 40)  # left, right, top, bottom (px)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round numbers (1, 2 or 5 x 10^k apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


class Scale:
    """Data -> pixel along one axis; log10 when ``log``; categories at 0..n-1."""

    def __init__(self, lo: float, hi: float, px0: float, px1: float, log: bool = False, cats: list | None = None):
        self.log, self.cats, self.px0, self.px1 = log, cats, px0, px1
        if cats is not None:
            lo, hi = -0.5, len(cats) - 0.5
        elif log:
            lo, hi = math.log10(lo), math.log10(hi)
        if not hi > lo:  # one value: a unit window around it
            lo, hi = lo - 0.5 * (abs(lo) or 1.0), hi + 0.5 * (abs(hi) or 1.0)
        self.lo, self.hi = lo, hi

    def __call__(self, v) -> np.ndarray:
        v = np.asarray(v, float)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.log10(v)
        return self.px0 + (v - self.lo) / (self.hi - self.lo) * (self.px1 - self.px0)

    def ticks(self) -> list[tuple[float, str]]:
        if self.cats is not None:
            return [(i, str(c)) for i, c in enumerate(self.cats)]
        if self.log:
            lo, hi = math.floor(self.lo), math.ceil(self.hi)
            mults = (1, 2, 5) if hi - lo <= 3 else (1,)
            step = max(1, (hi - lo) // 6)
            vals = [m * 10.0**e for e in range(lo, hi + 1, step) for m in mults]
            return [(v, f"{v:g}") for v in vals if self.lo - 1e-9 <= math.log10(v) <= self.hi + 1e-9]
        return [(t, f"{t:.4g}") for t in nice_ticks(self.lo, self.hi)]


def span(values, log_if_wide: bool = True) -> tuple[float, float, bool]:
    """(low, high, log) of the finite values: log when all positive and they
    span more than a decade."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0, False
    lo, hi = float(v.min()), float(v.max())
    log = log_if_wide and lo > 0 and hi / lo > 10
    if not log:
        pad = 0.04 * (hi - lo)
        lo, hi = lo - pad, hi + pad
    return lo, hi, log


class Chart:
    """One SVG chart. Add marks, then ``svg()``."""

    def __init__(
        self,
        x: tuple,
        y: tuple,
        xlabel: str = "",
        ylabel: str = "",
        width: int = 470,
        height: int = 300,
        xcats: list | None = None,
    ):
        left, right, top, bottom = _PAD
        self.w, self.h = width, height
        self.x = Scale(x[0], x[1], left, width - right, x[2], xcats)
        self.y = Scale(y[0], y[1], height - bottom, top, y[2])
        self.xlabel, self.ylabel, self.marks = xlabel, ylabel, []

    @staticmethod
    def _attrs(tip: str | None, member) -> str:
        return (f' data-tip="{esc(tip)}"' if tip else "") + (
            f' data-member="{esc(fmt(member))}"' if member is not None else ""
        )

    def line(self, xs, ys, color: str, width: float = 1.0, opacity: float = 1.0, tip=None, member=None) -> None:
        px, py = self.x(xs), self.y(ys)
        ok = np.isfinite(px) & np.isfinite(py)
        if ok.sum() < 1:
            return
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px[ok], py[ok]))
        self.marks.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="{width}" opacity="{opacity}" points="{pts}"'
            f"{self._attrs(tip, member)}/>"
        )

    def band(self, xs, lo, hi, color: str, opacity: float = 0.15) -> None:
        px, pl, ph = self.x(xs), self.y(lo), self.y(hi)
        ok = np.isfinite(px) & np.isfinite(pl) & np.isfinite(ph)
        if ok.sum() < 2:
            return
        pts = [f"{a:.1f},{b:.1f}" for a, b in zip(px[ok], ph[ok])] + [
            f"{a:.1f},{b:.1f}" for a, b in zip(px[ok][::-1], pl[ok][::-1])
        ]
        self.marks.append(f'<polygon fill="{color}" stroke="none" opacity="{opacity}" points="{" ".join(pts)}"/>')

    def point(
        self, x, y, color: str, r: float = 3.5, tip=None, member=None, shape: str = "circle", label: str = ""
    ) -> None:
        px, py = float(self.x(x)), float(self.y(y))
        if not (math.isfinite(px) and math.isfinite(py)):
            return
        a = self._attrs(tip, member)
        if shape == "star":
            self.marks.append(
                f'<path d="M{px:.1f},{py - 6:.1f} L{px + 2:.1f},{py - 2:.1f} L{px + 6:.1f},{py - 2:.1f} '
                f"L{px + 3:.1f},{py + 1:.1f} L{px + 4:.1f},{py + 6:.1f} L{px:.1f},{py + 3:.1f} "
                f"L{px - 4:.1f},{py + 6:.1f} "
                f'L{px - 3:.1f},{py + 1:.1f} L{px - 6:.1f},{py - 2:.1f} L{px - 2:.1f},{py - 2:.1f} Z" fill="{color}" '
                f'stroke="#000" stroke-width="0.6"{a}/>'
            )
        else:
            self.marks.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="{r}" fill="{color}" fill-opacity="0.8" stroke="#fff" '
                f'stroke-width="0.5"{a}/>'
            )
        if label:
            self.marks.append(f'<text x="{px + 7:.1f}" y="{py - 5:.1f}">{esc(label)}</text>')

    def svg(self) -> str:
        left, right, top, bottom = _PAD
        x0, x1, y0, y1 = left, self.w - right, self.h - bottom, top
        axis = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="#fff" stroke="#999"/>']
        for v, label in self.x.ticks():
            p = float(self.x(v))
            if x0 - 0.5 <= p <= x1 + 0.5:
                axis.append(f'<line x1="{p:.1f}" x2="{p:.1f}" y1="{y1}" y2="{y0}" stroke="#eee"/>')
                axis.append(f'<text x="{p:.1f}" y="{y0 + 14}" text-anchor="middle">{esc(label[:14])}</text>')
        for v, label in self.y.ticks():
            p = float(self.y(v))
            if y1 - 0.5 <= p <= y0 + 0.5:
                axis.append(f'<line x1="{x0}" x2="{x1}" y1="{p:.1f}" y2="{p:.1f}" stroke="#eee"/>')
                axis.append(f'<text x="{x0 - 4}" y="{p + 4:.1f}" text-anchor="end">{esc(label)}</text>')
        axis.append(f'<text x="{(x0 + x1) / 2}" y="{self.h - 6}" text-anchor="middle">{esc(self.xlabel)}</text>')
        axis.append(
            f'<text transform="translate(12,{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">'
            f"{esc(self.ylabel)}</text>"
        )
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
            f'viewBox="0 0 {self.w} {self.h}">{"".join(axis)}{"".join(self.marks)}</svg>'
        )


def bars(labels: list[str], values: list[float], color: str = "#1f77b4", xlabel: str = "", tips=None) -> str:
    """Horizontal bars, one per label, longest first as given."""
    n, width = len(labels), 470
    height, left = 26 + 20 * n, 170
    vmax = max([v for v in values if math.isfinite(v)] + [1e-12])
    out = []
    for i, (label, v) in enumerate(zip(labels, values)):
        w = 0.0 if not math.isfinite(v) else max(v, 0) / vmax * (width - left - 50)
        tip = f' data-tip="{esc(tips[i])}"' if tips else ""
        out.append(
            f'<text x="{left - 6}" y="{20 * i + 18}" text-anchor="end">{esc(label[:28])}</text>'
            f'<rect x="{left}" y="{20 * i + 6}" width="{w:.1f}" height="15" fill="{color}"{tip}/>'
            f'<text x="{left + w + 4:.1f}" y="{20 * i + 18}">{esc(fmt(v))}</text>'
        )
    out.append(f'<text x="{left}" y="{height - 4}">{esc(xlabel)}</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{"".join(out)}</svg>'


_VIRIDIS = (
    "#440154",
    "#482878",
    "#3e4989",
    "#31688e",
    "#26828e",
    "#1f9e89",
    "#35b779",
    "#6ece58",
    "#b5de2b",
    "#fde725",
)


def colour_scale(values, good_high: bool) -> list[str]:
    """A viridis colour per value: yellow = best (highest when ``good_high``)."""
    v = np.asarray(values, float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    t = np.zeros_like(v) if not hi > lo else (v - lo) / (hi - lo)
    if not good_high:
        t = 1 - t
    idx = np.clip(np.nan_to_num(t, nan=0.0) * (len(_VIRIDIS) - 1) + 0.5, 0, len(_VIRIDIS) - 1).astype(int)
    return [_VIRIDIS[i] for i in idx]


def colour_key(lo: float, hi: float, good_high: bool, label: str) -> str:
    """The colour bar of ``colour_scale`` as an HTML strip with its end values."""
    stops = _VIRIDIS if good_high else _VIRIDIS[::-1]
    grad = ",".join(stops)
    return (
        f'<div class="key">{esc(label)}: <span>{fmt(lo)}</span><i style="width:160px;background:linear-gradient('
        f'to right,{grad})"></i><span>{fmt(hi)}</span></div>'
    )

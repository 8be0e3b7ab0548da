"""The report's figures as PNG bytes (matplotlib, Agg, no pyplot global state).

Text from result files reaches a figure only through `_label`, which removes control
characters and is drawn with math text off, so a `$` in a host name is just a dollar sign.
"""

from __future__ import annotations

import functools
import io
import math
import re
from typing import TYPE_CHECKING, Any, Callable, Sequence

from results.render.units import scaled

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from results.report.model import (Band, BandPoint, BandwidthBar, MapPoint, PeerMatrix, PrecisionBar, Region,
                                      SoakSeries)

DPI = 100
REGION_COLOURS = {"3A090.a": "#f6c9c4", "3A090.b": "#fde3bf"}
BASIS_STYLE = {
    "peak-declared": dict(marker="*", s=170, color="#b3261e", label="subject: datasheet peak"),
    "peak-derived": dict(marker="D", s=60, facecolors="none", edgecolors="#b3261e", linewidths=1.5,
                         label="subject: peak derived from clocks"),
    "measured": dict(marker="o", s=60, color="#1f5fbf", label="subject: measured"),
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _label(text: object, limit: int = 48) -> str:
    clean = _CONTROL.sub("?", str(text))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


_RC = {"text.parse_math": False, "text.usetex": False}


def _plain_text(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """Run a figure function (building and saving) with math text and TeX off."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> bytes:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _log_axis(axis: Any, lo: float, hi: float, marks: Sequence[float]) -> None:
    """Log axis with plain-number ticks at decades and at the rule's threshold values."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    decades = [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    ticks = sorted({t for t in list(marks) + decades if lo <= t <= hi})
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,g}"))
    axis.set_minor_formatter(NullFormatter())


class _Labeller:
    """Places annotations next to points, trying a few offsets to avoid overlapping earlier ones."""

    OFFSETS = ((5, 3, "left"), (5, -10, "left"), (-5, 3, "right"), (-5, -10, "right"),
               (5, 12, "left"), (5, -19, "left"), (-5, 12, "right"), (-5, -19, "right"))

    def __init__(self, fig: "Figure", ax: Any) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
        self.renderer = fig.canvas.get_renderer()
        self.ax = ax
        self.boxes: list[Any] = []

    def block(self, artist: Any) -> None:
        self.boxes.append(artist.get_window_extent(self.renderer))

    def place(self, text: str, xy: tuple[float, float], **style: Any) -> None:
        chosen = None
        for dx, dy, ha in self.OFFSETS:
            note = self.ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, **style)
            box = note.get_window_extent(self.renderer)
            if not any(box.overlaps(other) for other in self.boxes):
                chosen = note
                break
            note.remove()
        if chosen is None:  # everything overlaps: keep the first position
            dx, dy, ha = self.OFFSETS[0]
            chosen = self.ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, **style)
        self.block(chosen)


def _log_limits(ax: Any, xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float, float]:
    """Log-log axes with a margin around every value: (x_lo, x_hi, y_lo, y_hi)."""
    x_lo, x_hi = min(xs) / 1.5, max(xs) * 1.5
    y_lo, y_hi = min(ys) / 1.8, max(ys) * 1.8
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    return x_lo, x_hi, y_lo, y_hi


def _plot_points(ax: Any, labeller: _Labeller, placed: Sequence[Any], x_of: Callable[[Any], float],
                 range_of: Callable[[Any], Any]) -> list:
    """A TPP map's points: the subjects' per basis first (their labels get the best places), then
    catalog parts, one dot per spot with its published x range as a line. Returns the catalog points."""
    seen_kinds: set[str] = set()
    labelled: set[str] = set()
    for p in placed:
        if p.kind == "catalog":
            continue
        style = dict(BASIS_STYLE.get(p.kind, BASIS_STYLE["measured"]))
        if p.kind in seen_kinds:
            style.pop("label", None)
        seen_kinds.add(p.kind)
        ax.scatter([x_of(p)], [p.tpp], zorder=8, **style)
        if p.label not in labelled:
            labelled.add(p.label)
            labeller.place(_label(p.label, 44), (x_of(p), p.tpp), fontsize=7, color="#0b2a5b", zorder=9)
    catalog = [p for p in placed if p.kind == "catalog"]
    by_spot: dict[tuple[float, float], list[Any]] = {}
    for p in catalog:
        by_spot.setdefault((round(p.tpp, 1), round(x_of(p) or 0, 3)), []).append(p)
    for (tpp, x), same in sorted(by_spot.items(), key=lambda item: -item[0][0]):
        first = same[0]
        if range_of(first):
            ax.plot(range_of(first), [tpp, tpp], color="#777777", lw=1, zorder=4)
        ax.scatter([x], [tpp], s=22, color="#555555", zorder=5)
        name = _label(first.label, 30) + (f" +{len(same) - 1}" if len(same) > 1 else "")
        labeller.place(name, (x, tpp), fontsize=6.5, color="#333333", zorder=6)
    return catalog


def _png(fig: "Figure") -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


# --------------------------------------------------------------------------- 1. map


@_plain_text
def tpp_pd_map(regions: Sequence["Region"], points: Sequence["MapPoint"]) -> bytes:
    from matplotlib.patches import Patch, Rectangle

    fig = _figure(9.0, 6.2)
    ax = fig.add_subplot()
    placed = [p for p in points if p.pd is not None and p.pd > 0 and p.tpp > 0]
    floating = [p for p in points if p.kind != "catalog" and (p.pd is None or p.pd <= 0) and p.tpp > 0]
    x_lo, x_hi, y_lo, y_hi = _log_limits(ax, [p.pd for p in placed] + [0.5, 40.0],
                                         [p.tpp for p in placed + floating] + [300.0, 60000.0])

    for group in ("3A090.b", "3A090.a"):  # a over b: where both match, 3A090.a applies
        for r in (r for r in regions if r.group == group):
            left, right = max(r.pd_min, x_lo), min(r.pd_max, x_hi)
            bottom, top = max(r.tpp_min, y_lo), min(r.tpp_max, y_hi)
            if right > left and top > bottom:
                ax.add_patch(Rectangle((left, bottom), right - left, top - bottom,
                                       facecolor=REGION_COLOURS.get(group, "#dddddd"),
                                       edgecolor="none", zorder=0 if group == "3A090.b" else 1))
    for r in regions:
        if r.pd_min > x_lo and r.pd_min < x_hi:
            ax.plot([r.pd_min] * 2, [max(r.tpp_min, y_lo), min(r.tpp_max, y_hi)], color="#999999",
                    lw=0.6, ls=":", zorder=2)
        if r.tpp_min > y_lo and r.tpp_min < y_hi:
            ax.plot([max(r.pd_min, x_lo), min(r.pd_max, x_hi)], [r.tpp_min] * 2, color="#999999",
                    lw=0.6, ls=":", zorder=2)
        ax.text(min(max(r.pd_min, x_lo) * 1.06, x_hi), min(r.tpp_min, y_hi) * 1.06, r.label,
                fontsize=7, color="#7a4a00" if r.group.endswith("b") else "#8c1d18", zorder=3)

    _log_axis(ax.xaxis, x_lo, x_hi, [r.pd_min for r in regions] + [r.pd_max for r in regions])
    _log_axis(ax.yaxis, y_lo, y_hi, [r.tpp_min for r in regions] + [r.tpp_max for r in regions])
    labeller = _Labeller(fig, ax)
    for text in ax.texts:
        labeller.block(text)

    catalog = _plot_points(ax, labeller, placed, lambda p: p.pd, lambda p: p.pd_range)

    for p in floating:
        ax.axhline(p.tpp, color="#1f5fbf", lw=1, ls="--", zorder=7)
        ax.text(x_lo * 1.05, p.tpp * 1.08, _label(f"{p.label}: TPP {p.tpp:,.1f}, no die area", 70),
                fontsize=7, color="#1f5fbf", zorder=9)

    handles, _ = ax.get_legend_handles_labels()
    handles += [Patch(facecolor=REGION_COLOURS["3A090.a"], label="3A090.a (2023 rule)"),
                Patch(facecolor=REGION_COLOURS["3A090.b"], label="3A090.b (2023 rule)")]
    return _finish_map(fig, ax, handles, bool(catalog), "performance density (TPP per mm² of applicable die area)",
                       "TPP versus performance density, ECCN 3A090 regions of the Oct 2023 rule")


def _finish_map(fig: "Figure", ax: Any, handles: list, with_catalog: bool, xlabel: str, title: str) -> bytes:
    """Legend (plus the catalog marker), axis labels, title and grid of a TPP map, as PNG bytes."""
    if with_catalog:
        handles.append(ax.scatter([], [], s=22, color="#555555", label="catalog part (datasheet)"))
    ax.legend(handles=handles, loc="lower right", fontsize=7, framealpha=0.9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("total processing performance (TPP)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", color="#dddddd", lw=0.5, zorder=0.5)
    return _png(fig)


# --------------------------------------------------------------------------- 2. precision


@_plain_text
def precision_bars(bars: Sequence["PrecisionBar"]) -> bytes:
    groups = list(dict.fromkeys(b.group for b in bars))
    fig = _figure(9.0, 2.9 * len(groups) + 0.4)
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, group in zip(axes, groups):
        mine = [b for b in bars if b.group == group]
        values = [b.measured for b in mine] + [b.peak for b in mine if b.peak]
        scale, unit = scaled("flop/s", values)
        xs = range(len(mine))
        peaks = [(b.peak or 0) / scale for b in mine]
        ax.bar(xs, peaks, width=0.7, facecolor="none", edgecolor="#8c1d18", ls="--", lw=1,
               label="datasheet dense peak")
        heights = [b.measured / scale for b in mine]
        err = [[(b.measured - b.measured_min) / scale for b in mine],
               [(b.measured_max - b.measured) / scale for b in mine]]
        ax.bar(xs, heights, width=0.5, color="#1f5fbf", label="measured (median over devices)",
               yerr=err if any(b.devices > 1 for b in mine) else None, capsize=3)
        for x, b in zip(xs, mine):
            pct = b.percent_of_peak
            top = max(b.measured, b.peak or 0) / scale
            ax.text(x, top * 1.02, f"{pct:.0f}% of peak" if pct is not None else "no datasheet peak",
                    ha="center", va="bottom", fontsize=7)
        ax.set_xticks(list(xs), [_label(b.precision + (" (op/s)" if b.unit == "op/s" else ""), 20)
                                 for b in mine], fontsize=8)
        ax.set_ylabel(unit.replace("FLOP/s", "FLOP/s or OP/s"), fontsize=8)
        ax.set_title(_label(group, 90), fontsize=9)
        ax.margins(y=0.18)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=2, fontsize=8, frameon=False)
    return _png(fig)


# --------------------------------------------------------------------------- 3. bandwidth


@_plain_text
def bandwidth_bars(bars: Sequence["BandwidthBar"]) -> bytes:
    """One row per device group; device memory and host link side by side, each on its own scale."""
    groups = list(dict.fromkeys(b.group for b in bars))
    families = ("memory", "hostlink")
    rows = [max(1.0, max(sum(1 for b in bars if b.group == g and b.benchmark == f) for f in families))
            for g in groups]
    fig = _figure(9.5, sum(0.32 * r + 1.1 for r in rows) + 0.2)
    axes = fig.subplots(len(groups), 2, squeeze=False, height_ratios=[0.32 * r + 1.1 for r in rows])
    titles = {"memory": "device memory", "hostlink": "host link"}
    for (ax_mem, ax_host), group in zip(axes, groups):
        for ax, family in ((ax_mem, "memory"), (ax_host, "hostlink")):
            mine = [b for b in bars if b.group == group and b.benchmark == family]
            ax.set_title(_label(f"{titles[family]}: {group}", 60), fontsize=8)
            if not mine:
                ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes,
                        fontsize=8, color="#777777")
                ax.set_axis_off()
                continue
            scale, unit = scaled("byte/s", [b.rate for b in mine])
            ys = list(range(len(mine)))
            err = [[(b.rate - b.rate_min) / scale for b in mine], [(b.rate_max - b.rate) / scale for b in mine]]
            ax.barh(ys, [b.rate / scale for b in mine], color="#2e7d32" if family == "memory" else "#6a1b9a",
                    xerr=err if any(b.devices > 1 for b in mine) else None, capsize=3)
            for y, b in zip(ys, mine):
                ax.text(b.rate / scale, y, f" {b.rate / scale:#.3g}", va="center", fontsize=7)
            ax.set_yticks(ys, [_label(b.variant, 28) for b in mine], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(unit, fontsize=8)
            ax.margins(x=0.18)
    return _png(fig)


@_plain_text
def peer_heatmap(matrix: "PeerMatrix") -> bytes:
    values = [[v if v is not None else math.nan for v in row] for row in matrix.values]
    flat = [v for row in values for v in row if not math.isnan(v)]
    scale, unit = scaled("byte/s", flat)
    n = len(matrix.devices)
    fig = _figure(1.2 + 0.55 * n + 1.5, 1.0 + 0.5 * n + 0.8)
    ax = fig.add_subplot()
    image = ax.imshow([[v / scale for v in row] for row in values], cmap="viridis")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, "-" if math.isnan(v) else f"{v / scale:.3g}", ha="center", va="center",
                    fontsize=7, color="white")
    labels = [f"gpu{d}" for d in matrix.devices]
    ax.set_xticks(range(n), labels, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set_xlabel("destination", fontsize=8)
    ax.set_ylabel("source", fontsize=8)
    ax.set_title(_label(f"peer-to-peer {matrix.variant} ({unit})", 60), fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return _png(fig)


# --------------------------------------------------------------------------- 1b. the 2026 map

DUTY_COLOUR = "#f4b183"  # the Section 232 tariff boxes
BAND_COLOUR = "#cfe3f7"
CUT_COLOUR = "#b26a00"


@_plain_text
def tpp_dram_map(bands: Sequence["Band"], points: Sequence["BandPoint"]) -> bytes:
    """TPP against DRAM bandwidth with the 2026 rule's case-by-case band shaded (its bounds come
    from the rule data), catalog parts for context and the subjects' points per basis."""
    from matplotlib.patches import Patch, Rectangle

    fig = _figure(9.0, 6.2)
    ax = fig.add_subplot()
    placed = [p for p in points if math.isfinite(p.tpp) and math.isfinite(p.dram_gbs)
              and p.tpp > 0 and p.dram_gbs > 0]
    # Axis marks at the band's edges only: the tariff boxes' edges sit too close to them to label.
    marks_x = [b.dram_max_gbs for b in bands if math.isfinite(b.dram_max_gbs) and b.effect != "duty"]
    marks_y = [b.tpp_max for b in bands if math.isfinite(b.tpp_max) and b.effect != "duty"]
    x_lo, x_hi, y_lo, y_hi = _log_limits(ax, [p.dram_gbs for p in placed] + marks_x + [200.0, 10000.0],
                                         [p.tpp for p in placed] + marks_y + [300.0, 60000.0])
    for b in bands:
        left, right = max(b.dram_min_gbs, x_lo), min(b.dram_max_gbs, x_hi)
        bottom, top = max(b.tpp_min, y_lo), min(b.tpp_max, y_hi)
        if right > left and top > bottom:
            duty = b.effect == "duty"
            ax.add_patch(Rectangle((left, bottom), right - left, top - bottom,
                                   facecolor=DUTY_COLOUR if duty else BAND_COLOUR,
                                   edgecolor="#b35900" if duty else "#1f5fbf", lw=0.8 if not duty else 1.0,
                                   ls="-" if duty else "--", zorder=0.5 if duty else 0))
            if not duty:  # the boxes are narrow: the legend names them
                ax.text(left * 1.08, top / 1.12, _label(b.label, 60), fontsize=7, color="#0b3d7a", zorder=3, va="top")
    _log_axis(ax.xaxis, x_lo, x_hi, marks_x)
    _log_axis(ax.yaxis, y_lo, y_hi, marks_y)
    labeller = _Labeller(fig, ax)
    for text in ax.texts:
        labeller.block(text)
    catalog = _plot_points(ax, labeller, placed, lambda p: p.dram_gbs, lambda p: p.dram_range)
    cuts = [p for p in catalog if p.cut_from is not None and p.cut_from != (p.tpp, p.dram_gbs)
            and all(math.isfinite(v) and v > 0 for v in p.cut_from)]
    for p in cuts:
        ax.annotate("", xy=(p.dram_gbs, p.tpp), xytext=(p.cut_from[1], p.cut_from[0]), zorder=4,
                    arrowprops=dict(arrowstyle="->", color=CUT_COLOUR, lw=0.9, shrinkA=3, shrinkB=3))
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor=BAND_COLOUR, edgecolor="#1f5fbf", ls="--",
                         label="2026 case-by-case review band (China/Macau)"))
    if any(b.effect == "duty" for b in bands):
        handles.append(Patch(facecolor=DUTY_COLOUR, edgecolor="#b35900",
                             label="Section 232 tariff boxes (a duty on US imports)"))
    if cuts:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color=CUT_COLOUR, lw=0.9, marker=">", markersize=4,
                              label="cut-down variant (arrow from the original part)"))
    return _finish_map(fig, ax, handles, bool(catalog), "peak DRAM bandwidth (GB/s)",
                       "TPP versus DRAM bandwidth: the Jan 2026 licence-review band and the Section 232 tariff boxes")


@_plain_text
def soak_series(series: "SoakSeries") -> bytes:
    """A soak's rate per window over time (with its burst and steady medians), and the power."""
    fig = _figure(9.5, 3.0)
    ax = fig.subplots()
    scale, unit = scaled(f"{series.unit}/s", list(series.rate_per_s))
    ax.plot(series.t_s, [r / scale for r in series.rate_per_s], marker=".", color="#1f5fa8", label="rate per window")
    for value, style, name in ((series.burst_rate, ":", "burst"), (series.steady_rate, "--", "steady")):
        if isinstance(value, (int, float)):
            ax.axhline(value / scale, linestyle=style, color="#555555", linewidth=1, label=f"{name} {value / scale:#.3g}")
    ax.set_xlabel("time since the load started (s)", fontsize=8)
    ax.set_ylabel(unit, fontsize=8)
    ax.set_title(_label(series.label, 80), fontsize=8)
    powers = [p for p in series.power_w if p is not None]
    if powers:
        twin = ax.twinx()
        twin.plot([t for t, p in zip(series.t_s, series.power_w) if p is not None], powers, color="#b26a00",
                  linewidth=1, label="power (W)")
        twin.set_ylabel("W", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)

"""The report as one self-contained HTML file: inline CSS, figures as data: PNGs, no script,
no external reference. A Content-Security-Policy meta tag forbids every fetch but data: images,
and every string that comes from a result file or the rule data goes through `e()`.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Iterable, Sequence

from results.report.model import ReportData
from results.render.units import human_rate, interval_text, percent

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0} h2{font-size:18px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:12.5px;background:#fff}
th,td{border:1px solid #d9d9d9;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:8px 0} figure img{max-width:100%;height:auto;border:1px solid #e3e3e3;background:#fff}
figcaption{font-size:12px;color:#555}
.meta{color:#555;font-size:12.5px} code{font-size:12px;background:#f0f0f0;padding:0 3px;word-break:break-all}
tr.near td{background:#fff4ce} .badge{display:inline-block;font-size:11px;font-weight:600;padding:0 6px;
border-radius:8px;background:#b26a00;color:#fff;margin-left:4px}
.controlled{color:#8c1d18;font-weight:600} .not_controlled{color:#1b5e20} .indeterminate{color:#6a4f00;font-weight:600}
.dim{color:#777} nav a{margin-right:12px} details{margin:6px 0}
table.strip td{text-align:center;font-size:11.5px;min-width:64px} td.s-controlled{background:#f6c9c4}
td.s-not_controlled{background:#d7ecd9} td.s-indeterminate{background:#fff4ce} td.s-inside{background:#cfe3f7}
td.s-outside{background:#eeeeee} td.s-none{color:#999} .above{color:#8c1d18;font-weight:600}
"""


def e(value: Any) -> str:
    """Escape for HTML text and attribute values. None -> '-'."""
    return "-" if value is None else html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str | None = None,
           row_classes: Sequence[str] | None = None, numeric: Sequence[int] = (),
           table_class: str | None = None, cell_classes: Sequence[Sequence[str]] | None = None) -> str:
    """`cell_classes[i][j]` (when given and not empty) is the class of row i's cell j."""
    attr = (f' class="{e(table_class)}"' if table_class else "") + (f' id="{e(table_id)}"' if table_id else "")
    out = [f"<table{attr}><thead><tr>"]
    out += [f"<th>{e(h)}</th>" for h in headers]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes and row_classes[i] else ""
        out.append(f'<tr class="{e(cls)}">' if cls else "<tr>")
        for j, cell in enumerate(row):
            raw = cell.html if isinstance(cell, Markup) else e(cell)
            td_class = "num" if j in numeric else (cell_classes[i][j] if cell_classes else "")
            out.append(f'<td class="{e(td_class)}">{raw}</td>' if td_class else f"<td>{raw}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


class Markup:
    """Already-escaped HTML for a table cell (built only from e() output and literal tags)."""

    def __init__(self, html_text: str) -> None:
        self.html = html_text


def _img(png: bytes, alt: str, img_id: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{e(img_id)}" alt="{e(alt)}" src="data:image/png;base64,{data}">'


def figures_for(data: ReportData) -> dict[str, bytes]:
    """Draw every figure the report shows (matplotlib, imported here only)."""
    from results.render import plots

    figures = {"map": plots.tpp_pd_map(data.regions, data.map_points),
               "dram-map": plots.tpp_dram_map(data.bands, data.band_points)}
    if data.precision:
        figures["precision"] = plots.precision_bars(data.precision)
    if data.bandwidth:
        figures["bandwidth"] = plots.bandwidth_bars(data.bandwidth)
    for i, matrix in enumerate(data.peers):
        figures[f"peer-{i}"] = plots.peer_heatmap(matrix)
    for i, series in enumerate(data.soaks):
        figures[f"soak-{i}"] = plots.soak_series(series)
    return figures


def render(data: ReportData, figures: dict[str, bytes]) -> str:
    """`figures`: name -> PNG bytes (map, precision, bandwidth, peer-N)."""
    subjects = {s.id: s for s in data.subjects}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(data.title)}</title><style>{STYLE}</style></head><body><main>",
        f"<h1>{e(data.title)}</h1>",
        f'<p class="meta">Generated {e(data.generated_utc)} by tppbench; verdicts as of {e(data.as_of)}; '
        f"near limit = within {e(f'{data.near_pct:g}')}% of a threshold. Files:</p><ul class=\"meta\">",
        *(f"<li><code>{e(s)}</code></li>" for s in data.sources),
        "</ul>",
        '<nav><a href="#map">1. Map</a><a href="#precision">2. Peak</a><a href="#bandwidth">3. Bandwidth</a>'
        '<a href="#verdicts">4. Verdicts</a><a href="#telemetry">5. Telemetry and context</a></nav>',
    ]
    parts += _map_section(data, figures)
    parts += _precision_section(data, figures)
    parts += _bandwidth_section(data, figures)
    parts += _verdict_section(data, subjects)
    parts += _telemetry_section(data)
    parts += _soak_section(data, figures)
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _map_section(data: ReportData, figures: dict[str, bytes]) -> list[str]:
    out = ['<section id="map"><h2>1. TPP versus performance density</h2>']
    out.append("<figure>" + _img(figures["map"], "Map of TPP versus performance density with the "
                                 "3A090.a and 3A090.b regions, the measured subjects and catalog parts",
                                 "tpp-pd-map"))
    out.append(f"<figcaption>Regions from {e(data.regions_source)}. Regulatory TPP is a theoretical "
               "peak quantity: the datasheet (star) and clock-derived (diamond) points are what the rules "
               "read; the measured point (circle) is a sanity check, and a measured value below a "
               "threshold never by itself makes a part uncontrolled.</figcaption></figure>")
    rows = [[p.label, f"{p.tpp:,.1f}", "-" if p.pd is None else f"{p.pd:.2f}",
             ", ".join(p.regions) or ("none" if p.pd is not None else "unknown (no die area)")]
            for p in data.map_points if p.kind != "catalog"]
    out.append(_table(["subject point", "TPP", "performance density", "2023 regions"], rows,
                      table_id="map-points", numeric=(1, 2)))
    region_rows = [[r.label, interval_text(r.tpp_min, r.tpp_max), interval_text(r.pd_min, r.pd_max)] for r in data.regions]
    out.append("<details><summary>Region bounds</summary>"
               + _table(["paragraph", "TPP", "performance density"], region_rows) + "</details>")
    if data.off_map:
        out.append(f'<p class="meta">Catalog parts not placed (no performance density): '
                   f"{e('; '.join(data.off_map))}.</p>")
    out += _band_map(data, figures)
    out.append("</section>")
    return out



def _band_map(data: ReportData, figures: dict[str, bytes]) -> list[str]:
    out = ["<h3>TPP versus DRAM bandwidth: the 2026 licence-review band</h3>",
           "<figure>" + _img(figures["dram-map"], "Map of TPP versus DRAM bandwidth with the 2026 "
                             "case-by-case review band shaded, the subjects and catalog parts", "tpp-dram-map")]
    source = data.bands_source or "no rule data"
    out.append(f"<figcaption>Band from {e(source)}. Inside the band a licence for China/Macau is reviewed "
               "case by case instead of under a presumption of denial; the part is still controlled. Peak "
               "DRAM bandwidth is compared ('total DRAM bandwidth' is not defined in the text seen).</figcaption></figure>")
    rows = [[p.label, f"{p.tpp:,.1f}", f"{p.dram_gbs:,.0f}", ", ".join(p.inside) or "outside"]
            for p in data.band_points if p.kind != "catalog"]
    out.append(_table(["subject point", "TPP", "DRAM GB/s", "2026 band"], rows, table_id="band-points",
                      numeric=(1, 2)))
    band_rows = [[b.label, interval_text(b.tpp_min, b.tpp_max), interval_text(b.dram_min_gbs, b.dram_max_gbs)]
                 for b in data.bands]
    out.append("<details><summary>Band bounds</summary>"
               + _table(["band", "TPP", "DRAM GB/s"], band_rows) + "</details>")
    return out


def _history_strips(data: ReportData) -> list[str]:
    if not data.histories:
        return []
    out = ["<h3>Status through time (tppbench history)</h3>",
           '<p class="meta">Outcome on each date the rule data names; "-" = the regime was not in force. '
           "Cells as in the verdict table (~ = a threshold within the near-limit percentage).</p>"]
    for i, h in enumerate(data.histories):
        out.append(f"<p><strong>{e(h.label)}</strong> ({e(h.basis or 'no basis')})</p>")
        rows = [[rid, *cells] for rid, cells in zip(h.regimes, h.cells)]
        classes = [["", *(f"s-{c}" for c in row)] for row in h.classes]
        out.append(_table(["regime", *h.dates], rows, table_id=f"history-strip-{i}", table_class="strip",
                          cell_classes=classes))
        if h.changes:
            out.append('<ul class="meta">' + "".join(f"<li>{e(d)}: {e(t)}</li>" for d, t in h.changes) + "</ul>")
    return out


def _precision_section(data: ReportData, figures: dict[str, bytes]) -> list[str]:
    out = ['<section id="precision"><h2>2. Measured versus datasheet peak, per precision</h2>']
    if not data.precision:
        return out + ["<p>No successful matmul measurement in these files.</p></section>"]
    out.append("<figure>" + _img(figures["precision"], "Bars of measured matmul throughput per precision "
                                 "against the datasheet dense peak", "precision-bars") + "</figure>")
    rows = [[b.group, b.precision, human_rate(b.measured, b.unit), b.devices,
             human_rate(b.peak, b.unit) if b.peak else "no datasheet figure",
             Markup(e(percent(b.percent_of_peak)) + (' <span class="above">above peak</span>' if b.above_peak else ""))]
            for b in data.precision]
    out.append(_table(["device", "precision", "measured (median)", "devices", "datasheet peak", "% of peak"],
                      rows, table_id="precision-table", numeric=(2, 3, 4, 5)))
    out.append('<p class="meta">Datasheet peak = dense rate from the thresholds catalog (the ratio it '
               "reports for the measured TPP); measured = best shape per precision.</p>")
    if any(b.above_peak for b in data.precision):
        out.append(f'<p class="above">{e(data.above_peak_note)}</p>')
    out.append("</section>")
    return out


def _bandwidth_section(data: ReportData, figures: dict[str, bytes]) -> list[str]:
    out = ['<section id="bandwidth"><h2>3. Bandwidth: device memory, host link, peer to peer</h2>']
    if data.bandwidth:
        out.append("<figure>" + _img(figures["bandwidth"], "Bars of device-memory and host-link bandwidth",
                                     "bandwidth-bars") + "</figure>")
        rows = [[b.group, b.benchmark, b.variant, human_rate(b.rate, "byte/s"), b.devices, b.convention]
                for b in data.bandwidth]
        out.append(_table(["device", "family", "variant", "rate (median)", "devices", "bytes counted"], rows,
                          table_id="bandwidth-table", numeric=(3, 4)))
    else:
        out.append("<p>No successful device-memory or host-link measurement in these files.</p>")
    if data.peers:
        for i, matrix in enumerate(data.peers):
            out.append(f"<h3>Peer to peer: {e(matrix.variant)} in <code>{e(matrix.group)}</code></h3>")
            out.append("<figure>" + _img(figures[f"peer-{i}"], f"Peer-to-peer heatmap {matrix.variant}",
                                         f"peer-heatmap-{i}") + "</figure>")
    else:
        out.append('<p class="meta">No peer-to-peer measurements in these files (no heatmap).</p>')
    out.append("</section>")
    return out


def _verdict_section(data: ReportData, subjects: dict) -> list[str]:
    out = ['<section id="verdicts"><h2>4. Verdicts per regime</h2>']
    applicable = [v for v in data.verdicts if v.applicable]
    near = sum(1 for v in applicable if v.near_limit)
    out.append(f"<p>{len(applicable)} verdicts on {len(data.subjects)} device(s); "
               f"<strong>{near} near a limit</strong> (highlighted).</p>")
    rows, classes = [], []
    for v in applicable:
        outcome = Markup(f'<span class="{e(v.outcome)}">{e(v.outcome.replace("_", " "))}</span>'
                         + ('<span class="badge">near limit</span>' if v.near_limit else ""))
        rows.append([subjects[v.subject].label if v.subject in subjects else v.subject, v.rule_set,
                     v.basis, outcome, v.paragraph or "-", v.nearest or "-", v.reason])
        classes.append("near" if v.near_limit else "")
    out.append(_table(["device", "regime", "basis", "outcome", "paragraph", "nearest threshold", "reason"],
                      rows, table_id="verdict-table", row_classes=classes))
    other = {}
    for v in data.verdicts:
        if not v.applicable:
            other.setdefault(v.rule_set, v.reason)
    if other:
        items = "".join(f"<li><strong>{e(k)}</strong>: {e(r)}</li>" for k, r in other.items())
        out.append(f"<details><summary>Regimes that do not apply to a single device ({len(other)})"
                   f"</summary><ul>{items}</ul></details>")
    out += _history_strips(data)
    notes = [(s.label, n) for s in data.subjects for n in s.notes]
    matches = [(s.label, s.catalog_id, s.match) for s in data.subjects]
    out.append(_table(["device", "catalog part", "matched by"], matches, table_id="catalog-match"))
    if notes:
        out.append("<ul class=\"meta\">" + "".join(f"<li>{e(l)}: {e(n)}</li>" for l, n in notes) + "</ul>")
    out.append("</section>")
    return out


def _telemetry_section(data: ReportData) -> list[str]:
    out = ['<section id="telemetry"><h2>5. Telemetry notes and run context</h2>']
    throttled = [t for t in data.telemetry if "throttled" in t.flags]
    if throttled:
        out.append(f"<p><strong>{len(throttled)} throttled case(s)</strong> (kept, but slower than the "
                   "part can run):</p>")
        out.append(_table(["file", "device", "case", "throttle reasons", "SM clock min/mean/max MHz"],
                          [[t.source, t.device, t.key, ", ".join(t.throttle_reasons) or "-", _clock(t)]
                           for t in throttled], table_id="throttled-table"))
    else:
        out.append("<p>No throttled cases.</p>")
    noisy = [t for t in data.telemetry if "noisy" in t.flags]
    if noisy:
        out.append(f"<p>{len(noisy)} noisy case(s) (IQR above 10 % of the median): "
                   f"{e(', '.join(t.key for t in noisy))}.</p>")
    with_clock = [t for t in data.telemetry if t.sm_clock_mhz is not None]
    missing = sorted({t.unavailable for t in data.telemetry if t.unavailable})
    if with_clock:
        rows = [[t.source, t.device, t.key, _clock(t), "-" if t.power_w_mean is None else f"{t.power_w_mean:.0f}",
                 "-" if t.temperature_c_max is None else f"{t.temperature_c_max:.0f}", ", ".join(t.flags) or "-"]
                for t in with_clock]
        out.append("<details><summary>Clocks, power and temperature per case</summary>"
                   + _table(["file", "device", "case", "SM clock min/mean/max MHz", "power mean W",
                             "temperature max C", "flags"], rows, table_id="clock-table") + "</details>")
    if missing:
        out.append(f'<p class="meta">Telemetry unavailable for some cases: {e("; ".join(missing))}.</p>')
    for ctx in data.contexts:
        out.append(f"<h3>Run context: <code>{e(ctx.source)}</code></h3>")
        out.append(_table(["field", "value"], ctx.run, table_id=None))
        if ctx.devices:
            headers = ["device field"] + [f"device {dict(d).get('index', i)}" for i, d in enumerate(ctx.devices)]
            fields = [f for f, _ in ctx.devices[0]]
            rows = [[f] + [dict(d).get(f, "-") for d in ctx.devices] for f in fields]
            out.append(_table(headers, rows))
    out.append("</section>")
    return out


def _clock(t: Any) -> str:
    if t.sm_clock_mhz is None:
        return "-"
    lo, mean, hi = t.sm_clock_mhz
    return f"{lo:.0f} / {mean:.0f} / {hi:.0f}"


def _soak_section(data: ReportData, figures: dict[str, bytes]) -> list[str]:
    if not data.soaks:
        return []
    out = ['<section id="soak"><h2>6. Sustained load</h2>',
           '<p class="meta">Each point is one ~1 s window of the held load; burst = median of the first 3 s, '
           "steady = median of the last half (docs/method.md).</p>"]
    for i, series in enumerate(data.soaks):
        ratio = f"{series.sustained_ratio:.3f}" if isinstance(series.sustained_ratio, (int, float)) else "-"
        out.append(f"<figure>{_img(figures[f'soak-{i}'], f'soak series {series.label}', f'soak-{i}')}"
                   f"<figcaption>{e(series.label)}: sustained/burst {e(ratio)}, {len(series.t_s)} windows</figcaption></figure>")
    out.append("</section>")
    return out

"""`verify -o lot.html`: the lot as one self-contained page (inline CSS and SVG, no script, no
fetch; the report's Content-Security-Policy): the lot table, each unit's items, and a
measured-vs-declared bar per item. Every string from a file goes through `e()`."""

from __future__ import annotations

from results.render.html import CSP, STYLE, e
from results.render.lot import declared_text, number_text
from results.verification.lot import Lot

LOT_STYLE = """
td.d-verified,td.d-consistent{background:#d7ecd9} td.d-exceeds-declaration{background:#f6c9c4;font-weight:600}
td.d-below-expected{background:#fff4ce;font-weight:600} td.d-not-measured,td.d-not-declared{color:#777}
td.d-duplicate-serial{background:#f6c9c4} svg.bar{vertical-align:middle}
"""


def _cls(determination: str) -> str:
    return "d-" + determination.replace(" ", "-")


def _bar(measured: float | None, declared_hi: float | None, limit: float | None, floor: float | None) -> str:
    """Measured as a bar against declared = 100 px (a tick), the tolerance limit and the floor."""
    if measured is None or not declared_hi:
        return ""
    scale = 100.0 / declared_hi
    w = min(measured * scale, 190.0)
    parts = [f'<svg class="bar" width="200" height="14" role="img" aria-label="measured {e(number_text(measured))} vs declared {e(number_text(declared_hi))}">',
             '<rect x="0" y="3" width="200" height="8" fill="#eee"/>',
             f'<rect x="0" y="3" width="{w:.1f}" height="8" fill="#4a78b5"/>',
             '<line x1="100" y1="0" x2="100" y2="14" stroke="#000" stroke-width="1.5"/>']
    if limit:
        parts.append(f'<line x1="{min(limit * scale, 199):.1f}" y1="0" x2="{min(limit * scale, 199):.1f}" y2="14" stroke="#8c1d18"/>')
    if floor:
        parts.append(f'<line x1="{floor * scale:.1f}" y1="0" x2="{floor * scale:.1f}" y2="14" stroke="#b26a00" stroke-dasharray="2,2"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_lot_html(lot: Lot) -> str:
    p, dec = lot.procedure, lot.declared
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
           f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">',
           f"<title>tppbench lot {e(lot.name)}</title><style>{STYLE}{LOT_STYLE}</style></head><body><main>",
           f"<h1>Lot {e(lot.name)}: {'verified' if lot.verified else 'not verified'}</h1>",
           f'<p class="meta">{len(lot.units)} unit(s) of {e(lot.units[0].unit.model)}; procedure {e(p.id)} '
           f"v{e(p.version)} (sha256 <code>{e(p.sha256)}</code>); declared: {e(dec.ref)} ({e(dec.name)}, sha256 "
           f"<code>{e(dec.sha256)}</code>); created {e(lot.created_utc)}. Statistic: the upper "
           f"{p.determination.confidence:.0%} confidence bound of the median against declared &times; "
           f"(1 + {p.determination.upper_tolerance:g}).</p>",
           "<h2>Lot</h2>", '<table id="lot-table"><thead><tr><th>serial</th><th>determination</th><th>decided by</th>'
           "<th>file</th><th>sha256</th></tr></thead><tbody>"]
    for u in lot.units:
        out.append(f'<tr><td>{e(u.unit.serial)}</td><td class="{_cls(u.determination)}">{e(u.determination)}</td>'
                   f"<td>{e(u.decided_by or '-')}</td><td>{e(u.unit.file.name)}</td><td><code>{e(u.unit.sha256[:16])}</code></td></tr>")
    out.append("</tbody></table>")
    out.append('<p id="lot-counts">' + "; ".join(f"{e(k)}: {v}" for k, v in lot.counts.items()) + "</p>")
    if lot.outliers:
        out.append("<p>Outliers (robust z): " + "; ".join(e(o) for o in lot.outliers) + "</p>")
    out.append("<h2>Units</h2>")
    for n, u in enumerate(lot.units):
        out.append(f'<h3 id="unit-{n}">{e(u.unit.label)}: <span class="{_cls(u.determination)}">{e(u.determination)}</span></h3>')
        out.append("<table><thead><tr><th>item</th><th>measured</th><th>unit</th><th>declared</th>"
                   "<th>measured vs declared</th><th>determination</th><th>why</th></tr></thead><tbody>")
        for i in u.items:
            hi = i.declared.hi if i.declared is not None else None
            out.append(f"<tr><td>{e(i.item)}</td><td class=num>{e(number_text(i.measured))}</td><td>{e(i.unit)}</td>"
                       f"<td class=num>{e(declared_text(i))}</td><td>{_bar(i.measured, hi, i.limit, i.floor)}</td>"
                       f'<td class="{_cls(i.determination)}">{e(i.determination)}</td><td>{e(i.reason)}</td></tr>')
        out.append("</tbody></table>")
        out.append("<p>" + "; ".join(f"{e(s.rule)}: declared {e(s.declared)}, measured {e(s.measured)}" for s in u.standings)
                   + (f"; measured profile consistent with {u.consistent_count} catalog part(s), tightest "
                      + e(", ".join(u.consistent_with)) if u.consistent_count else "") + "</p>")
        for note in u.notes:
            out.append(f'<p class="dim">note: {e(note)}</p>')
    out.append('<p class="meta">Bar: measured (blue) on a scale where the declared figure is the black tick; '
               "red: the tolerance limit; dashed amber: the floor.</p></main></body></html>")
    return "\n".join(out)

"""Render an analysis as text, markdown, JSON or a self-contained HTML page (inline SVG, no CDN)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from logloupe.analyse.anomaly.offline import FileAnomaly
from logloupe.analyse.insights import AnalysisResult, Insight, Usage

FORMATS = ("text", "markdown", "json", "html")
_LEVEL_COLOURS = {
    "fatal": "#7f1d1d",
    "error": "#dc2626",
    "warn": "#f59e0b",
    "info": "#3b82f6",
    "debug": "#9ca3af",
    "trace": "#e5e7eb",
    "none": "#d1d5db",
}


def report_dict(
    result: AnalysisResult,
    insights: list[Insight],
    usage: Usage,
    source: str,
    top: int = 50,
    anomalies: Sequence[FileAnomaly] = (),
    anomaly_count: int = 0,
    anomaly_detection: bool = True,
    anomaly_threshold: float = 0.7,
    llm_policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "source": source,
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lines": result.total_lines,
        "events": result.total_lines if result.events is None else result.events,
        "levels": dict(result.levels),
        "labels": dict(result.labels),
        "pattern_count": len(result.patterns),
        "patterns": [p.to_dict() for p in result.patterns[:top]],
        "timeline": result.timeline,
        "timeline_by": result.timeline_by,
        "timeline_bucket_s": result.bucket_s,
        "timeline_bucket_lines": result.bucket_lines if result.timeline_by == "line" else None,
        "timeline_untimed": result.untimed,
        "insights": [i.to_dict() for i in insights],
        "usage": usage.to_dict(),
        "anomalies": [a.to_dict() for a in anomalies],
        "anomaly_count": max(anomaly_count, len(anomalies)),
        "anomaly_detection": anomaly_detection,
        "anomaly_threshold": anomaly_threshold,
        "llm_policy": llm_policy or {"source": "settings", "note": ""},
    }


def render(fmt: str, data: dict[str, Any]) -> str:
    if fmt == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    if fmt == "markdown":
        return _markdown(data)
    if fmt == "html":
        return _html(data)
    return _text(data)


def _cites(insight: dict[str, Any]) -> str:
    parts = []
    for c in insight["citations"]:
        mark = "" if c.get("verified", True) else " (unverified)"
        parts.append(f"pattern {c['pattern_id']} lines {', '.join(map(str, c['lines']))}{mark}")
    return "; ".join(parts) or "none"


def _uncited(insight: dict[str, Any]) -> str:
    return "" if insight.get("grounded", True) else "[uncited] "


def _text(data: dict[str, Any]) -> str:
    out = [
        f"LogLoupe analysis of {data['source']}: {data['lines']} lines, {data.get('events', data['lines'])} events, "
        f"{data['pattern_count']} patterns",
        "levels: " + ", ".join(f"{k}={v}" for k, v in sorted(data["levels"].items())),
        "labels: " + ", ".join(f"{k}={v}" for k, v in sorted(data["labels"].items())),
        "",
    ]
    if data.get("llm_policy", {}).get("note"):
        out[-1:-1] = [f"LLM policy: {data['llm_policy']['note']}"]
    out.append("Top patterns")
    for p in data["patterns"][:15]:
        out.append(f"  {p['count']:>8}  {p['label']:<17} {p['pattern_id']}  {p['template'][:110]}")
    out.append("")
    out += _text_anomalies(data)
    out.append(f"Insights ({len(data['insights'])})")
    for k, i in enumerate(data["insights"], 1):
        out.append(f"\n{k}. {_uncited(i)}{i['title']}  [confidence {i['confidence']:.2f}, {i['source']}]")
        out.append(f"   Analysis: {i['summary']}")
        out.append(f"   Error Description: {i['error_description']}")
        out.append(f"   Possible Cause: {i['probable_cause']}")
        out.append("   Recommended Solution / Fixes:")
        out += [f"     - {f}" for f in i["fixes"]]
        out.append(f"   Citations: {_cites(i)}")
        for past in i.get("past_incidents", []):
            out.append(
                f"   Seen before on {past['seen']} (pattern {past['pattern_id']}), fixed by: {past['resolution']}"
            )
    u = data["usage"]
    out.append(
        f"\nUsage: {u['tokens_in']} tokens in, {u['tokens_out']} out, {u['requests']} request(s), "
        f"est. ${u['cost_usd']:.4f}"
    )
    return "\n".join(out) + "\n"


_KIND_COLOURS = {
    "new_pattern": "#7c3aed",
    "rate_spike": "#dc2626",
    "rate_drop": "#2563eb",
    "silence": "#6b7280",
    "error_ratio": "#f59e0b",
}


def _where(a: dict[str, Any]) -> str:
    lines = a["lines"]
    shown = ", ".join(map(str, lines[:8])) + (" …" if len(lines) > 8 else "")
    if not lines:
        return f"at line {a['at_line']}"
    return f"line {shown}" if len(lines) == 1 else f"lines {shown}"


def _anomaly_heading(data: dict[str, Any]) -> str:
    if not data.get("anomaly_detection", True):
        return "Anomalies (not run)"
    shown, total = len(data.get("anomalies", [])), data.get("anomaly_count", 0)
    return f"Anomalies ({shown} of {total}, highest scores)" if total > shown else f"Anomalies ({shown})"


def _text_anomalies(data: dict[str, Any]) -> list[str]:
    out = [_anomaly_heading(data)]
    for a in data.get("anomalies", [])[:20]:
        ts = a["ts"] or "no timestamp"
        out.append(f"  {a['score']:.2f}  {a['kind']:<11} {a['service']}  {ts}  {_where(a)}")
        out.append(f"        {a['explanation'][:200]}")
    out.append("")
    return out


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _markdown(data: dict[str, Any]) -> str:
    out = [
        f"# LogLoupe analysis: {_md_escape(data['source'])}",
        "",
        f"{data['lines']} lines, {data.get('events', data['lines'])} events, {data['pattern_count']} patterns. "
        + ", ".join(f"{k}: {v}" for k, v in sorted(data["labels"].items())),
        "",
        "## Top patterns",
        "",
        "| count | label | pattern | template |",
        "|---:|---|---|---|",
    ]
    for p in data["patterns"][:20]:
        out.append(f"| {p['count']} | {p['label']} | `{p['pattern_id']}` | `{_md_escape(p['template'][:140])}` |")
    out += ["", f"## {_anomaly_heading(data)}", ""]
    if data.get("anomalies"):
        out += ["| score | kind | service | time | where | explanation |", "|---:|---|---|---|---|---|"]
        for a in data["anomalies"][:30]:
            out.append(
                f"| {a['score']:.2f} | {a['kind']} | {_md_escape(a['service'])} | {a['ts'] or ''} | "
                f"{_where(a)} | {_md_escape(a['explanation'][:200])} |"
            )
    else:
        out.append("None found.")
    out += ["", "## Insights"]
    for i in data["insights"]:
        out += [
            "",
            f"### {_uncited(i)}{_md_escape(i['title'])}",
            "",
            f"*confidence {i['confidence']:.2f} · {i['source']}*",
            "",
            "**Analysis.** " + _md_escape(i["summary"]),
            "",
            "**Error Description.** " + _md_escape(i["error_description"]),
            "",
            "**Possible Cause.** " + _md_escape(i["probable_cause"]),
            "",
            "**Recommended Solution / Fixes.**",
            "",
        ]
        out += [f"- {_md_escape(f)}" for f in i["fixes"]]
        out += ["", f"**Citations.** {_cites(i)}"]
        for past in i.get("past_incidents", []):
            out.append(f"\n> Seen before on {past['seen']}, fixed by: {_md_escape(past['resolution'])}")
    u = data["usage"]
    out += [
        "",
        "## Usage",
        "",
        f"{u['tokens_in']} tokens in, {u['tokens_out']} out, {u['requests']} request(s), "
        f"estimated ${u['cost_usd']:.4f}.",
        "",
    ]
    return "\n".join(out)


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def timeline_caption(data: dict[str, Any]) -> str:
    """What the timeline's buckets are: event time (and how wide), or ranges of lines."""
    if data.get("timeline_by") == "time" and data.get("timeline_bucket_s"):
        untimed = data.get("timeline_untimed") or 0
        extra = f"; {untimed} event(s) without a timestamp not shown" if untimed else ""
        return f"by event time, buckets of {_span(int(data['timeline_bucket_s']))}{extra}"
    lines = data.get("timeline_bucket_lines")
    return f"by line number, {lines} lines per bucket" if lines else "by line number"


def _bucket_title(bucket: dict[str, Any]) -> str:
    lines = f"lines {bucket['from_line']}-{bucket['to_line']}" if bucket.get("from_line") else "no lines"
    if "from" in bucket:
        return f"{bucket['from']} – {bucket['to']}, {lines}"
    return lines


def _svg_timeline(timeline: list[dict[str, Any]]) -> str:
    width, height = 720, 160
    if not timeline:
        return ""
    totals = [sum(b["levels"].values()) for b in timeline]
    peak = max(totals) or 1
    bar_w = width / len(timeline)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 36}" role="img" '
        f'aria-label="events per level along the file">'
    ]
    order = ["trace", "debug", "info", "none", "warn", "error", "fatal"]
    for k, bucket in enumerate(timeline):
        y = float(height)
        title = html.escape(_bucket_title(bucket))
        for level in order:
            n = bucket["levels"].get(level, 0)
            if not n:
                continue
            h = n / peak * height
            y -= h
            parts.append(
                f'<rect x="{k * bar_w:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{_LEVEL_COLOURS[level]}"><title>{title}: {level} {n}</title></rect>'
            )
    if "from" in timeline[0]:  # the time axis: where it starts and ends
        parts.append(f'<text x="0" y="{height + 32}" font-size="11">{html.escape(timeline[0]["from"])}</text>')
        parts.append(
            f'<text x="{width}" y="{height + 32}" font-size="11" text-anchor="end">'
            f"{html.escape(timeline[-1]['to'])}</text>"
        )
    x = 0
    for level in order:
        parts.append(
            f'<rect x="{x}" y="{height + 8}" width="10" height="10" fill="{_LEVEL_COLOURS[level]}"/>'
            f'<text x="{x + 14}" y="{height + 17}" font-size="11">{level}</text>'
        )
        x += 70
    parts.append("</svg>")
    return "".join(parts)


def _svg_top_patterns(patterns: list[dict[str, Any]]) -> str:
    rows = patterns[:10]
    if not rows:
        return ""
    peak = max(p["count"] for p in rows) or 1
    colour = {"incident": "#dc2626", "preventive_action": "#f59e0b", "normal": "#3b82f6"}
    row_h, width = 22, 720
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row_h * len(rows)}" role="img" '
        f'aria-label="top patterns by count">'
    ]
    for k, p in enumerate(rows):
        w = p["count"] / peak * 300
        label = html.escape(p["template"][:70])
        parts.append(
            f'<rect x="0" y="{k * row_h + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'fill="{colour.get(p["label"], "#9ca3af")}"/>'
            f'<text x="{w + 6:.1f}" y="{k * row_h + 15}" font-size="11">{p["count"]} · {label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_anomalies(anomalies: list[dict[str, Any]], total_lines: int, threshold: float = 0.7) -> str:
    """Score of each anomaly along the file (x: the line where it was found), one marker each."""
    if not anomalies:
        return ""
    width, height, pad = 720, 140, 20
    span = max(total_lines, max(a["at_line"] for a in anomalies), 1)
    low = min(threshold, min(a["score"] for a in anomalies)) - 0.05

    def y_of(score: float) -> float:
        return pad + (1.0 - score) / (1.0 - low) * (height - 2 * pad) if low < 1 else pad

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" role="img" '
        f'class="anomalies-chart" aria-label="anomaly scores along the file">',
        f'<line x1="0" y1="{height - pad}" x2="{width}" y2="{height - pad}" stroke="#e5e7eb"/>',
        f'<line x1="0" y1="{y_of(1.0):.1f}" x2="{width}" y2="{y_of(1.0):.1f}" stroke="#f3f4f6"/>',
        f'<text x="2" y="{y_of(1.0) - 3:.1f}" font-size="10" fill="#6b7280">1.0</text>',
        f'<line x1="0" y1="{y_of(threshold):.1f}" x2="{width}" y2="{y_of(threshold):.1f}" stroke="#9ca3af" '
        f'stroke-dasharray="4 3"/>',
        f'<text x="{width - 2}" y="{y_of(threshold) - 3:.1f}" font-size="10" fill="#6b7280" '
        f'text-anchor="end">threshold {threshold:.2f}</text>',
        f'<text x="2" y="{height - pad + 12}" font-size="10" fill="#6b7280">line 1</text>',
        f'<text x="{width - 2}" y="{height - pad + 12}" font-size="10" fill="#6b7280" '
        f'text-anchor="end">line {span}</text>',
    ]
    for a in anomalies:
        x = (a["at_line"] - 1) / span * (width - 20) + 10
        y = y_of(a["score"])
        colour = _KIND_COLOURS.get(a["kind"], "#111827")
        tip = html.escape(f"{a['kind']} {a['service']} score {a['score']:.2f} {_where(a)}: {a['explanation'][:200]}")
        parts.append(
            f'<line x1="{x:.1f}" y1="{height - pad}" x2="{x:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="1"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"><title>{tip}</title></circle>'
        )
    x = 0
    for kind, colour in _KIND_COLOURS.items():
        parts.append(
            f'<rect x="{x}" y="{height + 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{height + 17}" font-size="11">{kind}</text>'
        )
        x += 100
    parts.append("</svg>")
    return "".join(parts)


def _html_anomalies(data: dict[str, Any]) -> str:
    e = html.escape
    anomalies = data.get("anomalies", [])
    if not anomalies:
        return f"<h2>{e(_anomaly_heading(data))}</h2><p>None found.</p>"
    rows = "".join(
        f"<tr><td>{a['score']:.2f}</td><td>{e(a['kind'])}</td><td>{e(a['service'])}</td>"
        f"<td>{e(a['ts'] or '')}</td><td>{e(_where(a))}</td>"
        f"<td><code>{e(' '.join(a['pattern_ids']))}</code></td><td>{e(a['explanation'])}</td></tr>"
        for a in anomalies
    )
    chart = _svg_anomalies(anomalies, data["lines"], data.get("anomaly_threshold", 0.7))
    return (
        f"<h2>{e(_anomaly_heading(data))}</h2>{chart}"
        "<table class='anomalies'><tr><th>score</th><th>kind</th><th>service</th><th>time</th>"
        f"<th>where</th><th>patterns</th><th>explanation</th></tr>{rows}</table>"
    )


def _html(data: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{p['count']}</td><td class='{e(p['label'])}'>{e(p['label'])}</td>"
        f"<td><code>{e(p['pattern_id'])}"
        f"</code></td><td><code>{e(p['template'][:200])}</code></td></tr>"
        for p in data["patterns"][:30]
    )
    cards = []
    for i in data["insights"]:
        fixes = "".join(f"<li>{e(f)}</li>" for f in i["fixes"])
        cites = (
            "".join(
                f"<li><code>{e(c['pattern_id'])}</code> lines {e(', '.join(map(str, c['lines'])))}"
                f"{'' if c.get('verified', True) else ' (unverified)'}</li>"
                for c in i["citations"]
            )
            or "<li>none</li>"
        )
        past = "".join(
            f"<p class='past'>Seen before on {e(p['seen'])}, fixed by: {e(p['resolution'])}</p>"
            for p in i.get("past_incidents", [])
        )
        flag = "" if i.get("grounded", True) else "<span class='uncited'>uncited</span> "
        cards.append(
            f"<section class='insight'><h3>{flag}{e(i['title'])}</h3>"
            f"<p class='meta'>confidence {i['confidence']:.2f} · {e(i['source'])}</p>"
            f"<h4>Analysis</h4><p>{e(i['summary'])}</p>"
            f"<h4>Error Description</h4><p>{e(i['error_description'])}</p>"
            f"<h4>Possible Cause</h4><p>{e(i['probable_cause'])}</p>"
            f"<h4>Recommended Solution / Fixes</h4><ul>{fixes}</ul>"
            f"<h4>Citations</h4><ul>{cites}</ul>{past}</section>"
        )
    u = data["usage"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LogLoupe analysis: {e(data["source"])}</title>
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:1000px;color:#111}}
table{{border-collapse:collapse;font-size:13px}}
td,th{{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left}}
.insight{{border:1px solid #e5e7eb;border-radius:8px;padding:0 1rem;margin:1rem 0}}.meta{{color:#6b7280}}
.incident{{color:#dc2626}}.preventive_action{{color:#b45309}}.uncited{{background:#fde68a;padding:0 4px}}
code{{font-size:12px;word-break:break-all}}.past{{background:#ecfdf5;padding:4px}}
</style></head><body>
<h1>LogLoupe analysis</h1>
<p>{e(data["source"])} · {data["lines"]} lines · {data.get("events", data["lines"])} events ·
{data["pattern_count"]} patterns ·
{e(", ".join(f"{k}: {v}" for k, v in sorted(data["labels"].items())))}</p>
<h2>Timeline by level</h2><p class="meta">{e(timeline_caption(data))}</p>{_svg_timeline(data["timeline"])}
<h2>Top patterns</h2>{_svg_top_patterns(data["patterns"])}
<table><tr><th>count</th><th>label</th><th>pattern</th><th>template</th></tr>{rows}</table>
{_html_anomalies(data)}
<h2>Insights</h2>{"".join(cards) or "<p>No incidents or errors found.</p>"}
<h2>Usage</h2><p>{u["tokens_in"]} tokens in, {u["tokens_out"]} out, {u["requests"]} request(s),
estimated ${u["cost_usd"]:.4f}.</p>
</body></html>
"""

"""Small inline-SVG charts for the run report, pure: numbers in, an `<svg>` string out.

Hand-written SVG instead of a plotting library keeps the report self-contained (no scripts, no
images to fetch) and the DAG environment free of a plotting dependency. Every chart carries
`data-chart="<name>"` and its marks carry `class="mark"`, so tests can find them in the DOM.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 560, 260
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 28, 56
PLOT_WIDTH = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
PLOT_HEIGHT = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
TICKS = 5  # with tops of 1, 2 or 5 x 10^n, five steps give round tick labels

BLUE, ORANGE, RED, GREY = "#3b6ea8", "#e08a2c", "#c0392b", "#9aa5b1"


def bar_chart(name: str, title: str, labels: Sequence[str], values: Sequence[float], *, unit: str,
              highlight: set[str] | frozenset[str] = frozenset()) -> str:
    """Vertical bars, one per label; highlighted labels (stragglers) drawn red."""
    return stacked_bar_chart(name, title, labels, [(unit, list(values), BLUE)], unit=unit, highlight=highlight,
                             legend=False)


def stacked_bar_chart(name: str, title: str, labels: Sequence[str],
                      series: Sequence[tuple[str, Sequence[float], str]], *, unit: str,
                      highlight: set[str] | frozenset[str] = frozenset(), legend: bool = True) -> str:
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(labels))]
    top = _nice_top(max(totals, default=0.0))
    parts = [_frame(name, title), *_y_axis(top, unit)]
    slot = PLOT_WIDTH / max(len(labels), 1)
    bar_width = max(2.0, slot * 0.7)
    for index, label in enumerate(labels):
        x = MARGIN_LEFT + index * slot + (slot - bar_width) / 2
        base = 0.0
        for series_name, values, color in series:
            value = values[index]
            fill = RED if label in highlight and len(series) == 1 else color
            y_top, y_bottom = _y(base + value, top), _y(base, top)
            parts.append(
                f'<rect class="mark" x="{x:.1f}" y="{y_top:.1f}" width="{bar_width:.1f}" '
                f'height="{max(y_bottom - y_top, 0.0):.1f}" fill="{fill}">'
                f"<title>{escape(label)} {escape(series_name)}: {_fmt(value)} {escape(unit)}</title></rect>"
            )
            base += value
        if len(labels) <= 24:
            cx = x + bar_width / 2
            parts.append(f'<text x="{cx:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 12}" font-size="9" text-anchor="end" '
                         f'transform="rotate(-35 {cx:.1f} {HEIGHT - MARGIN_BOTTOM + 12})">{escape(label)}</text>')
    if legend:
        parts.append(_legend([(series_name, color) for series_name, _, color in series]))
    return _close(parts)


def step_line_chart(name: str, title: str, points: Sequence[tuple[float, float]], *, x_unit: str,
                    y_unit: str) -> str:
    """A step line through (x, y) points: y holds from each x until the next."""
    x_max = max((x for x, _ in points), default=1.0) or 1.0
    top = _nice_top(max((y for _, y in points), default=0.0))
    parts = [_frame(name, title), *_y_axis(top, y_unit)]
    path = []
    for index, (x, y) in enumerate(points):
        px, py = MARGIN_LEFT + x / x_max * PLOT_WIDTH, _y(y, top)
        if index == 0:
            path.append(f"M{px:.1f},{py:.1f}")
        else:
            path.append(f"H{px:.1f}V{py:.1f}")
    if path:
        parts.append(f'<path class="mark" d="{" ".join(path)}" fill="none" stroke="{BLUE}" stroke-width="2"/>')
    for tick in range(TICKS + 1):
        value = x_max * tick / TICKS
        px = MARGIN_LEFT + PLOT_WIDTH * tick / TICKS
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" font-size="10" '
                     f'text-anchor="middle">{_fmt(value)}</text>')
    parts.append(f'<text x="{MARGIN_LEFT + PLOT_WIDTH / 2}" y="{HEIGHT - 8}" font-size="11" '
                 f'text-anchor="middle">{escape(x_unit)}</text>')
    return _close(parts)


def histogram_overlay(name: str, title: str, edges: Sequence[float], current: Sequence[int],
                      previous: Sequence[int] | None, *, current_label: str, previous_label: str) -> str:
    """Shares per bin of this run (bars) against the previous run (outlined steps)."""
    current_shares = _shares(current)
    previous_shares = _shares(previous) if previous else []
    top = _nice_top(max([*current_shares, *previous_shares], default=0.0))
    parts = [_frame(name, title), *_y_axis(top, "share of rows")]
    bins = len(current)
    slot = PLOT_WIDTH / max(bins, 1)
    for index, share in enumerate(current_shares):
        x, y = MARGIN_LEFT + index * slot, _y(share, top)
        parts.append(f'<rect class="mark current" x="{x:.1f}" y="{y:.1f}" width="{slot:.1f}" '
                     f'height="{_y(0, top) - y:.1f}" fill="{BLUE}" fill-opacity="0.55">'
                     f"<title>[{_fmt(edges[index])}, {_fmt(edges[index + 1])}): {share:.2%}</title></rect>")
    if previous_shares:
        path = [f"M{MARGIN_LEFT:.1f},{_y(0, top):.1f}"]
        for index, share in enumerate(previous_shares):
            path.append(f"V{_y(share, top):.1f}H{MARGIN_LEFT + (index + 1) * slot:.1f}")
        path.append(f"V{_y(0, top):.1f}")
        parts.append(f'<path class="mark previous" d="{"".join(path)}" fill="none" stroke="{ORANGE}" '
                     f'stroke-width="2"/>')
    for index in range(0, bins + 1, max(1, bins // TICKS)):
        px = MARGIN_LEFT + index * slot
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" font-size="10" '
                     f'text-anchor="middle">{_fmt(edges[index])}</text>')
    entries = [(current_label, BLUE)] + ([(previous_label, ORANGE)] if previous_shares else [])
    parts.append(_legend(entries))
    return _close(parts)


def horizontal_bars(name: str, title: str, items: Sequence[tuple[str, float]], *, unit: str) -> str:
    """One labelled horizontal bar per item, its value written beside it."""
    top = max((value for _, value in items), default=0.0) or 1.0
    row = min(28.0, PLOT_HEIGHT / max(len(items), 1))
    label_width = 110
    parts = [_frame(name, title)]
    for index, (label, value) in enumerate(items):
        y = MARGIN_TOP + index * row
        width = (WIDTH - label_width - 120) * value / top
        parts.append(f'<text x="{label_width - 6}" y="{y + row * 0.65:.1f}" font-size="11" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="mark" x="{label_width}" y="{y + 3:.1f}" width="{max(width, 1.0):.1f}" '
                     f'height="{row - 6:.1f}" fill="{BLUE}"><title>{escape(label)}: {_fmt(value)} '
                     f"{escape(unit)}</title></rect>")
        parts.append(f'<text x="{label_width + width + 6:.1f}" y="{y + row * 0.65:.1f}" font-size="11">'
                     f"{_fmt(value)} {escape(unit)}</text>")
    return _close(parts)


def _frame(name: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="{escape(name)}" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
            f'<text x="{WIDTH / 2}" y="16" font-size="13" font-weight="bold" text-anchor="middle">'
            f"{escape(title)}</text>")


def _close(parts: list[str]) -> str:
    return "".join(parts) + "</svg>"


def _y_axis(top: float, unit: str) -> list[str]:
    parts = [f'<line x1="{MARGIN_LEFT}" y1="{_y(0, top):.1f}" x2="{WIDTH - MARGIN_RIGHT}" '
             f'y2="{_y(0, top):.1f}" stroke="{GREY}"/>']
    for tick in range(TICKS + 1):
        value = top * tick / TICKS
        y = _y(value, top)
        parts.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{WIDTH - MARGIN_RIGHT}" y2="{y:.1f}" '
                     f'stroke="#e5e8eb"/>')
        parts.append(f'<text x="{MARGIN_LEFT - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">'
                     f"{_fmt(value)}</text>")
    parts.append(f'<text x="14" y="{MARGIN_TOP + PLOT_HEIGHT / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 14 {MARGIN_TOP + PLOT_HEIGHT / 2})">{escape(unit)}</text>')
    return parts


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    parts = []
    x = WIDTH - MARGIN_RIGHT - 150 * len(entries)
    for label, color in entries:
        parts.append(f'<rect x="{x}" y="{MARGIN_TOP - 4}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="{MARGIN_TOP + 5}" font-size="10">{escape(label)}</text>')
        x += 150
    return "".join(parts)


def _y(value: float, top: float) -> float:
    return MARGIN_TOP + PLOT_HEIGHT * (1 - (value / top if top else 0.0))


def _nice_top(value: float) -> float:
    """The axis top: the value rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** _floor_log10(value)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _floor_log10(value: float) -> int:
    import math

    return math.floor(math.log10(value))


def _shares(counts: Sequence[int] | None) -> list[float]:
    total = sum(counts or []) or 1
    return [count / total for count in counts or []]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 0.01:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.2g}"

#!/usr/bin/env python
"""Draw bench.py's --json output as a chart, and print it as a reStructuredText table.

    pip install matplotlib
    python tests/performance/bench.py --json out.json
    python tests/performance/chart.py out.json docs/_static/performance.png

One panel per figure (the scenarios that are in the file): a bar per implementation at the
median of the runs, a line from the lowest to the highest run. The table (stdout) gives the
same medians with their spread and the first implementation's ratio to each other one.
"""

from __future__ import annotations

import argparse
import json
import math

from bench import fmt, ratio_text  # the figures as bench.py prints them

#: (scenario, metric) pairs shown, in order.
FIGURES = [
    ('rtt', 'cpu_us_per_unit'),
    ('polling', 'units_per_s'),
    ('broadcast', 'cpu_us_per_unit'),
    ('burst', 'cpu_us_per_unit'),
    ('binary', 'mb_per_s'),
    ('idle', 'kib_per_conn'),
    ('idle', 'units_per_s'),
]
SCENARIO_NAMES = {
    'rtt': 'round trips, websocket',
    'polling': 'round trips, long-polling',
    'broadcast': 'fan-out, one at a time',
    'burst': 'fan-out, burst',
    'binary': '64 KiB binary echo',
    'idle': 'idle websockets',
}
COLORS = ['#2e7d32', '#1565c0', '#8d6e63', '#6a1b9a', '#ef6c00']


def figures(data: dict) -> list[tuple[str, str, dict]]:
    return [(scen, key, data['summary'][scen][key]) for scen, key in FIGURES
            if key in data['summary'].get(scen, {})]


def draw(data: dict, out: str) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    labels = data['labels']
    shown = figures(data)
    cols = min(len(shown), 4)
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (scen, key, fig_data) in zip(axes.flat, shown):
        medians = [fig_data[lb] or 0 for lb in labels]
        spreads = [fig_data['spread'][lb] or (m, m) for lb, m in zip(labels, medians)]
        errors = [[m - lo for m, (lo, _) in zip(medians, spreads)],
                  [hi - m for m, (_, hi) in zip(medians, spreads)]]
        bars = ax.bar(labels, medians, yerr=errors, capsize=3,
                      color=[COLORS[i % len(COLORS)] for i in range(len(labels))])
        ax.bar_label(bars, labels=[fmt(m) for m in medians], fontsize=8, padding=2)
        ax.set_title(f'{SCENARIO_NAMES.get(scen, scen)}\n{fig_data["label"]}\n'
                     f'({fig_data["better"]} is better)', fontsize=8)
        ax.tick_params(labelsize=8)
        ax.margins(y=0.2)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis('off')
    runs = max(len(r) for scen in data['runs'].values() for r in scen.values())
    fig.suptitle(f'median of {runs} runs; whiskers: lowest and highest run', fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def rst_table(data: dict) -> str:
    labels = data['labels']
    first, others = labels[0], labels[1:]
    head = ['scenario', 'figure', *labels, *(f'{first} vs {lb}' for lb in others)]
    rows = []
    for scen, key, fig_data in figures(data):
        cells = [SCENARIO_NAMES.get(scen, scen), f'{fig_data["label"]} ({fig_data["better"]})']
        for lb in labels:
            lo, hi = fig_data['spread'][lb] or (None, None)
            cells.append(f'{fmt(fig_data[lb])} ({fmt(lo)}-{fmt(hi)})')
        cells += [ratio_text(fig_data['factors'].get(lb)) for lb in others]
        rows.append(cells)
    out = ['.. list-table::', '   :header-rows: 1', '']
    for cells in [head, *rows]:
        out.append('   * - ' + cells[0])
        out += [f'     - {c}' for c in cells[1:]]
    return '\n'.join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('json', help="bench.py's --json output")
    ap.add_argument('png', help='chart to write')
    args = ap.parse_args(argv)
    with open(args.json) as f:
        data = json.load(f)
    draw(data, args.png)
    print(rst_table(data))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

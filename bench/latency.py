#!/usr/bin/env python3
"""The latency bench's numbers: console log -> table, JSON and SVG.

    python3 bench/latency.py --log CONSOLE_LOG [--json OUT] [--svg OUT]

Reads the "# UMW-BENCH fs=F strategy=S run=I latency_us=L early=E status=X"
lines that the guest suite bench-latency prints (qemu/guest/bin/bench-wake.c
says what each strategy does), computes per filesystem and strategy the
median and p99 (nearest rank) latency, the slack over the floor (a
synchronous umount(2) of the same dirty state, median), the early returns,
the idle overhead ratios, checks the goals of bench/README.md and prints
it all. Python 3 standard library only; the SVG is written by hand.
"""

import argparse
import datetime
import json
import math
import re
import sys

LINE = re.compile(
    r"# UMW-BENCH fs=(\S+) strategy=(\S+) run=\d+ latency_us=(-?\d+) "
    r"early=(\d) status=(\d+)"
)

# Waiting strategies, in the order of the table and the plot.
STRATEGIES = [
    ("kernel-syscall", "(a) kernel: umount2(MNT_DETACH|UMOUNT_WAIT) in C"),
    ("kernel-cmd", "(a) kernel: umount-wait --mode kernel -l"),
    ("notify-syscall", "(a') notify: umount2(MNT_DETACH|UMOUNT_NOTIFY) + poll in C"),
    ("notify-cmd", "(a') notify: umount-wait --mode notify -l"),
    ("fallback-cmd", "(b) fallback: umount-wait --mode fallback -l"),
    ("poll-mounts", "(c) umount -l, poll /proc/mounts every 100 ms"),
    ("retry-excl", "(d) umount -l, retry O_EXCL every 100 ms"),
    ("retry-umount", "(d') retry umount(2) every 100 ms while EBUSY"),
]
COLORS = {
    "kernel-syscall": "#1b7837",
    "kernel-cmd": "#5aae61",
    "notify-syscall": "#762a83",
    "notify-cmd": "#c2a5cf",
    "fallback-cmd": "#2166ac",
    "poll-mounts": "#b2182b",
    "retry-excl": "#e08214",
    "retry-umount": "#8073ac",
}
FILESYSTEMS = ["ext4", "tmpfs"]


def parse(text):
    """{(fs, strategy): [(latency_us, early, status)]} and the kernel line."""
    samples = {}
    kernel = None
    for line in text.splitlines():
        if line.startswith("UMW-KERNEL"):
            kernel = line.strip()
        m = LINE.search(line)
        if m:
            fs, strategy, lat, early, status = m.groups()
            samples.setdefault((fs, strategy), []).append(
                (int(lat), int(early), int(status))
            )
    return samples, kernel


def quantile(values, q):
    """Nearest-rank quantile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def stats(samples):
    result = {}
    for fs in FILESYSTEMS:
        floor = samples.get((fs, "floor"))
        if not floor:
            continue
        floor_med = median([s[0] for s in floor])
        entry = {
            "floor": {
                "runs": len(floor),
                "median_us": floor_med,
                "p99_us": quantile([s[0] for s in floor], 0.99),
            },
            "strategies": {},
        }
        for name, _ in STRATEGIES:
            got = samples.get((fs, name))
            if not got:
                continue
            lat = [s[0] for s in got]
            med, p99 = median(lat), quantile(lat, 0.99)
            entry["strategies"][name] = {
                "runs": len(got),
                "median_us": med,
                "p99_us": p99,
                "median_slack_us": med - floor_med,
                "p99_slack_us": p99 - floor_med,
                "early_returns": sum(s[1] for s in got),
                "nonzero_exit": sum(1 for s in got if s[2] != 0),
                "latency_us": lat,
            }
            paired = samples.get((fs, "floor-" + name))
            if paired and len(paired) == len(got):
                # Each run's slack over the floor run made right after it,
                # under the same host load.
                diff = [g[0] - p[0] for g, p in zip(got, paired)]
                entry["strategies"][name].update({
                    "paired_floor_median_us": median([p[0] for p in paired]),
                    "paired_slack_median_us": median(diff),
                    "paired_slack_p99_us": quantile(diff, 0.99),
                })
        idle = {}
        for name in ("idle-umount2", "idle-umount2-wait", "idle-umount-cmd",
                     "idle-umount-wait-cmd", "idle-umount-notify-cmd",
                     "idle-busybox-true-cmd",
                     "idle-probe-cmd", "idle-probe-norandom-cmd"):
            got = samples.get((fs, name))
            if got:
                idle[name] = {"runs": len(got),
                              "median_us": median([s[0] for s in got])}
        if "idle-umount2" in idle and "idle-umount2-wait" in idle:
            idle["syscall_ratio"] = (idle["idle-umount2-wait"]["median_us"]
                                     / idle["idle-umount2"]["median_us"])
        if "idle-umount-cmd" in idle and "idle-umount-wait-cmd" in idle:
            idle["command_ratio"] = (idle["idle-umount-wait-cmd"]["median_us"]
                                     / idle["idle-umount-cmd"]["median_us"])
        if "idle-umount-cmd" in idle and "idle-umount-notify-cmd" in idle:
            idle["notify_command_ratio"] = (
                idle["idle-umount-notify-cmd"]["median_us"]
                / idle["idle-umount-cmd"]["median_us"])
        entry["idle"] = idle
        result[fs] = entry
    return result


def goals(result):
    """[(goal, measured, met)] for the goals of bench/README.md."""
    out = []

    def strat(fs, name):
        return result.get(fs, {}).get("strategies", {}).get(name)

    def slack(s, which):
        """The paired slack when the run has it, else against the floor."""
        return s.get(f"paired_slack_{which}_us", s[f"{which}_slack_us"])

    for fs in FILESYSTEMS:
        for name in ("kernel-syscall", "kernel-cmd", "notify-syscall", "notify-cmd"):
            s = strat(fs, name)
            if not s:
                continue
            out.append((f"{fs} {name}: median slack <= 1 ms",
                        f"{slack(s, 'median') / 1000:.2f} ms",
                        slack(s, "median") <= 1000))
            out.append((f"{fs} {name}: p99 slack <= 5 ms",
                        f"{slack(s, 'p99') / 1000:.2f} ms",
                        slack(s, "p99") <= 5000))
        s = strat(fs, "fallback-cmd")
        if s:
            out.append((f"{fs} fallback-cmd: median slack <= 3 ms",
                        f"{slack(s, 'median') / 1000:.2f} ms",
                        slack(s, "median") <= 3000))
    for name in ("kernel-syscall", "kernel-cmd", "notify-syscall", "notify-cmd"):
        s = strat("tmpfs", name)
        if s:
            out.append((f"tmpfs {name}: median latency <= 0.5 ms",
                        f"{s['median_us'] / 1000:.2f} ms",
                        s["median_us"] <= 500))
    for fs, factor in (("ext4", 8), ("tmpfs", 50)):
        loop = strat(fs, "retry-excl")
        for name in ("kernel-syscall", "kernel-cmd", "notify-syscall", "notify-cmd"):
            s = strat(fs, name)
            if not (s and loop):
                continue
            speedup = loop["median_us"] / max(s["median_us"], 1)
            out.append((f"{fs} {name}: median >= {factor}x faster than retry-excl",
                        f"{speedup:.1f}x", speedup >= factor))
    for fs in FILESYSTEMS:
        for name in ("kernel-syscall", "kernel-cmd", "notify-syscall", "notify-cmd",
                     "fallback-cmd"):
            s = strat(fs, name)
            if s:
                out.append((f"{fs} {name}: zero early returns",
                            str(s["early_returns"]), s["early_returns"] == 0))
    for fs in FILESYSTEMS:
        idle = result.get(fs, {}).get("idle", {})
        for key, what in (("syscall_ratio", "umount2 with/without UMOUNT_WAIT"),
                          ("command_ratio", "umount-wait --mode kernel / busybox umount"),
                          ("notify_command_ratio",
                           "umount-wait --mode notify / busybox umount")):
            if key in idle:
                out.append((f"{fs} idle {what} <= 1.05",
                            f"{idle[key]:.3f}", idle[key] <= 1.05))
    return out


def ms(us):
    return f"{us / 1000:.2f}"


def table(result):
    lines = []
    for fs, entry in result.items():
        f = entry["floor"]
        lines.append(f"{fs}: floor (synchronous umount(2), same dirty data) "
                     f"median {ms(f['median_us'])} ms, p99 {ms(f['p99_us'])} ms, "
                     f"{f['runs']} runs")
        lines.append(f"  {'strategy':<16}{'runs':>6}{'median ms':>11}{'p99 ms':>9}"
                     f"{'slack med':>11}{'slack p99':>11}{'early':>7}{'exit!=0':>9}")
        for name, s in entry["strategies"].items():
            lines.append(
                f"  {name:<16}{s['runs']:>6}{ms(s['median_us']):>11}{ms(s['p99_us']):>9}"
                f"{ms(s['median_slack_us']):>11}{ms(s['p99_slack_us']):>11}"
                f"{s['early_returns']:>7}{s['nonzero_exit']:>9}"
                + (f"   paired floor {ms(s['paired_floor_median_us'])}, slack "
                   f"med {ms(s['paired_slack_median_us'])} p99 "
                   f"{ms(s['paired_slack_p99_us'])}"
                   if "paired_slack_median_us" in s else ""))
        idle = entry["idle"]
        parts = [f"{k} {ms(v['median_us'])} ms" for k, v in idle.items()
                 if isinstance(v, dict)]
        if parts:
            lines.append("  idle medians: " + ", ".join(parts))
        for key in ("syscall_ratio", "command_ratio", "notify_command_ratio"):
            if key in idle:
                lines.append(f"  idle {key}: {idle[key]:.3f}")
        lines.append("")
    return "\n".join(lines)


def symlog(us):
    """Signed log scale: 0.1 ms and below is linear around zero."""
    v = us / 100.0
    return math.copysign(math.log10(1 + abs(v)), v)


def svg(result, title):
    """One panel per filesystem, one row per strategy: every sample as a dot,
    the median and p99 as ticks, the floor's median as a dashed line."""
    width, left, right = 960, 330, 30
    row_h, panel_gap, top = 34, 60, 50
    lo, hi = symlog(-200_000), symlog(1_000_000)
    plot_w = width - left - right

    def x(us):
        return left + (symlog(us) - lo) / (hi - lo) * plot_w

    rows = sum(len(e["strategies"]) for e in result.values())
    height = top + rows * row_h + len(result) * (panel_gap + 30) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">'
           f'{title}</text>']
    ticks = [-100_000, -10_000, -1000, 0, 1000, 10_000, 100_000, 1_000_000]
    y0 = top
    for fs, entry in result.items():
        n = len(entry["strategies"])
        y_end = y0 + 20 + n * row_h
        out.append(f'<text x="10" y="{y0 + 12}" font-weight="bold">{fs}</text>')
        for t in ticks:
            out.append(f'<line x1="{x(t):.1f}" y1="{y0 + 18}" x2="{x(t):.1f}" '
                       f'y2="{y_end}" stroke="#ddd"/>')
            label = "0" if t == 0 else f"{t / 1000:g} ms"
            out.append(f'<text x="{x(t):.1f}" y="{y_end + 14}" '
                       f'text-anchor="middle" fill="#555">{label}</text>')
        fx = x(entry["floor"]["median_us"])
        out.append(f'<line x1="{fx:.1f}" y1="{y0 + 18}" x2="{fx:.1f}" y2="{y_end}" '
                   f'stroke="black" stroke-dasharray="4,3"/>')
        out.append(f'<text x="{fx + 3:.1f}" y="{y0 + 14}" font-size="11">floor '
                   f'{ms(entry["floor"]["median_us"])} ms</text>')
        labels = dict(STRATEGIES)
        for i, (name, s) in enumerate(entry["strategies"].items()):
            cy = y0 + 20 + i * row_h + row_h / 2
            color = COLORS.get(name, "#444")
            early = f", {s['early_returns']} early" if s["early_returns"] else ""
            out.append(f'<text x="{left - 8}" y="{cy - 3:.1f}" text-anchor="end">'
                       f'{labels.get(name, name)}</text>')
            out.append(f'<text x="{left - 8}" y="{cy + 10:.1f}" text-anchor="end" '
                       f'font-size="10" fill="#555">median {ms(s["median_us"])} ms, '
                       f'p99 {ms(s["p99_us"])} ms{early}</text>')
            for j, lat in enumerate(s["latency_us"]):
                jitter = ((j * 7919) % 17 - 8) * 0.9
                out.append(f'<circle cx="{x(lat):.1f}" cy="{cy + jitter:.1f}" r="1.6" '
                           f'fill="{color}" fill-opacity="0.45"/>')
            for value, w in ((s["median_us"], 2.5), (s["p99_us"], 1.2)):
                out.append(f'<line x1="{x(value):.1f}" y1="{cy - 12:.1f}" '
                           f'x2="{x(value):.1f}" y2="{cy + 12:.1f}" stroke="black" '
                           f'stroke-width="{w}"/>')
        y0 = y_end + panel_gap
    out.append(f'<text x="{left}" y="{height - 12}" fill="#555" font-size="11">'
               'latency = waiter returned - holder closed (CLOCK_MONOTONIC, guest); '
               'signed log scale; thick tick median, thin tick p99; '
               'negative = returned before the close</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", required=True)
    ap.add_argument("--json")
    ap.add_argument("--svg")
    args = ap.parse_args()

    with open(args.log, errors="replace") as f:
        samples, kernel = parse(f.read())
    if not samples:
        sys.exit(f"bench/latency.py: no UMW-BENCH lines in {args.log}")
    result = stats(samples)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    print(f"{kernel or 'kernel unknown'}; {date}\n")
    print(table(result))
    checked = goals(result)
    print("goals:")
    for goal, measured, met in checked:
        print(f"  {'met   ' if met else 'MISSED'} {goal}: {measured}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kernel": kernel, "date": date, "results": result,
                       "goals": [{"goal": g, "measured": m, "met": ok}
                                 for g, m, ok in checked]}, f, indent=1)
            f.write("\n")
        print(f"\njson: {args.json}")
    if args.svg:
        release = kernel.split()[1] if kernel else ""
        with open(args.svg, "w") as f:
            f.write(svg(result, f"umount wake latency, QEMU TCG 2 vCPU, {release}, {date}"))
        print(f"svg: {args.svg}")


if __name__ == "__main__":
    main()

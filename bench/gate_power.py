"""What the quality gate can see: how often it holds back a candidate that is truly worse.

Simulates pairs of (production, candidate) on ``n`` held-out examples: production answers a
share ``--accuracy`` right; the candidate is ``drop`` points worse, with ``churn`` of the
examples answered differently by the two (the discordant pairs: real versions fix some
answers and break others). Each simulated pair goes through the gate's own rule
(:func:`steps.core.evaluate.uncertainty.noninferiority_binary`: exact McNemar one-sided lower
bound above -margin), and the table prints, per drop size, the share of candidates held back
("caught") at each held-out size: the baseline (the seed's 50) and the candidate (the production
default).

    .venv/bin/python bench/gate_power.py                     # 308 vs 50, margin 5, churn 10/20 %
    .venv/bin/python bench/gate_power.py --n 308 --n 50 --trials 4000
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from steps.core.evaluate.uncertainty import mcnemar_lower_bound, mcnemar_p_value  # noqa: E402


def caught(
    n: int, accuracy: float, drop: float, churn: float, margin: float, alpha: float,
    trials: int, rng: np.random.Generator, old_rule: bool = False,
) -> float:  # fmt: skip
    """Share of ``trials`` simulated candidates the gate holds back: the non-inferiority rule
    (bound <= -margin), or with ``old_rule`` the rule before it (held only when worse and a
    two-sided paired test gives p < 0.05; the exact McNemar p stands in for its bootstrap)."""
    # Per example: won (only the candidate right) with p_won, lost with p_lost, so that
    # p_won + p_lost = churn (at least the drop) and p_lost - p_won = drop.
    discordant = max(churn, drop)
    p_lost, p_won = (discordant + drop) / 2, (discordant - drop) / 2
    if p_lost > min(accuracy, 1 - accuracy + drop) + 1e-9:
        raise ValueError(f"a drop of {drop} with churn {churn} is impossible at {accuracy}")
    draws = rng.multinomial(n, [p_won, p_lost, 1 - p_won - p_lost], size=trials)
    held = 0
    for won, lost, _ in draws:
        if old_rule:
            held += won < lost and mcnemar_p_value(int(won), int(lost)) < 0.05
        else:
            held += mcnemar_lower_bound(int(won), int(lost), n, alpha) <= -margin
    return held / trials


def cpu() -> str:
    """The CPU's model name (benchmarks record the machine)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="held-out sizes (repeatable)")
    parser.add_argument("--accuracy", type=float, default=0.6, help="production's accuracy")
    parser.add_argument("--margin", type=float, default=0.05, help="the gate's margin")
    parser.add_argument("--alpha", type=float, default=0.05, help="one-sided level")
    parser.add_argument("--churn", type=float, action="append", help="discordant share")
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args(argv)
    sizes = args.n or [50, 308]
    baseline = min(sizes)
    churns = args.churn or [0.10, 0.20]
    drops = [0.0, 0.02, 0.05, 0.06, 0.08, 0.10, 0.15, 0.20]
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    print(f"machine: {cpu()}, Python {platform.python_version()}")
    print(
        f"gate: exact McNemar one-sided {100 * (1 - args.alpha):g} % lower bound > "
        f"-{100 * args.margin:g} pp; production accuracy {100 * args.accuracy:g} %; "
        f"{args.trials} simulated candidates per cell (seed {args.seed})"
    )
    columns = [(c, baseline, True) for c in churns] + [(c, n, False) for c in churns for n in sizes]
    header = " | ".join(
        f"{'old rule' if old else 'gate'} n={n}, churn {100 * c:g} %" for c, n, old in columns
    )
    print(f"| true drop | {header} |")
    print("|---:|" + "---:|" * len(columns))
    for drop in drops:
        cells = [
            caught(n, args.accuracy, drop, c, args.margin, args.alpha, args.trials, rng, old)
            for c, n, old in columns
        ]
        label = f"{100 * drop:g} pp"
        print(f"| {label} | " + " | ".join(f"{100 * x:.0f} %" for x in cells) + " |")
    print(
        f"caught = held back. old rule = 'not significantly worse' (held only when worse with "
        f"p < 0.05), the rule before non-inferiority. A drop of 0 shows how often an equal "
        f"candidate is held (the price of asking for evidence); at the margin "
        f"({100 * args.margin:g} pp) at most {100 * args.alpha:g} % get through by design. "
        f"{time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Holdout and audit benchmark: what the randomized holdout and the audit fields cost, side by side with the decision
path without them, in the same run (medians of several runs).

- one customer (the API's decision path): `decision.decide` (the baseline) vs `holdout.audited_decision` (decide, the
  arm of the id, the audit fields), without and with a 10 % holdout; µs per call;
- the arm of 100 000 ids (`holdout.holdout_arm`): seconds (the goal: well under a second);
- a batch of 100 000 customers under capacities: `decision.decide_batch` (the baseline) vs `holdout.decide_holdout`
  with a 10 % arm (the pool's allocation, the capacity prices, the held-out customers' would-be actions);
- `holdout.audit` recomputing a decision from its fields: µs per line.
Figures go to reports/bench/holdout.json (holdout_quick.json with --quick).

Usage: python bench/bench_holdout.py [--quick] [--runs 5]
"""
import argparse, json, os, platform, statistics, sys, time, timeit
from pathlib import Path

import numpy as np

from bayespilot.config import DecisionSettings
from bayespilot.decision import decide, decide_batch
from bayespilot.holdout import audit, audit_fields, audited_decision, decide_holdout, decide_one, holdout_arm

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'reports'/'bench'


def per_call_us(fn, number: int, runs: int) -> float:
    "Median over `runs` of the best of 3 repeats, in µs per call."
    fn()
    return statistics.median(min(timeit.repeat(fn, number=number, repeat=3)) / number * 1e6 for _ in range(runs))


def seconds(fn, runs: int) -> float:
    "Median wall time of `fn` over `runs` runs."
    out = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return statistics.median(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='smaller sizes, fewer runs (a smoke test, not figures)')
    ap.add_argument('--runs', type=int, default=5)
    a = ap.parse_args(argv)
    n, number, runs = (20_000, 500, 2) if a.quick else (100_000, 5000, a.runs)
    ds, dsh = DecisionSettings(), DecisionSettings(holdout_share=0.1)
    rng = np.random.default_rng(0)
    p, v, ids = rng.beta(2, 5, n), rng.lognormal(5.3, 0.5, n), np.arange(n)
    caps = {'review': n // 50, 'escalate': n // 200}
    one = {'decide_us (baseline)': per_call_us(lambda: decide(0.42, 250.0, ds, warn=False), number, runs),
           'audited_decision_us': per_call_us(lambda: audited_decision(0.42, 250.0, ds, 'C1'), number, runs),
           'audited_decision_holdout_10pct_us': per_call_us(lambda: audited_decision(0.42, 250.0, dsh, 'C1'),
                                                            number, runs)}
    one['added_us'] = one['audited_decision_holdout_10pct_us'] - one['decide_us (baseline)']
    arm = holdout_arm(ids, 'default', 0.1)
    batch = {'rows': n, 'capacity': caps,
             'holdout_arm_s': seconds(lambda: holdout_arm(ids, 'default', 0.1), runs),
             'decide_batch_s (baseline)': seconds(lambda: decide_batch(p, v, ds, capacity=caps, warn=False), runs),
             'decide_holdout_s': seconds(lambda: decide_holdout(p, v, dsh, arm, capacity=caps, warn=False), runs)}
    batch['decide_holdout_vs_decide_batch'] = batch['decide_holdout_s'] / batch['decide_batch_s (baseline)']
    out = decide_one(0.42, 250.0, dsh, 'C1')
    line = {'customer_id': 'C1', 'churn_probability': 0.42, 'audit': audit_fields(out, 250.0, dsh)}
    res = {'config': {'quick': a.quick, 'runs': runs, 'cpus': os.cpu_count(), 'python': platform.python_version(),
                      'load_average_at_start': list(os.getloadavg())},
           'one_customer': one, 'batch': batch, 'audit_us_per_line': per_call_us(lambda: audit(line), number, runs),
           'goals_met': {'100 000 ids hashed in under a second': batch['holdout_arm_s'] < 1.0},
           'load_average_at_end': list(os.getloadavg())}
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT/('holdout_quick.json' if a.quick else 'holdout.json')
    path.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2)); print(f'figures: {path.relative_to(ROOT)}')
    return 0


if __name__ == '__main__': sys.exit(main())

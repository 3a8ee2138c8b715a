"""Decision layer benchmark: exact capacity allocation for 100 000 customers against scipy's LP solver (HiGHS),
batch decisions, one-customer decisions (the API's path: scalar vs vectorised), and the model-policy / oracle-policy
profit ratio on synthetic data.

Writes reports/bench/decision.json. Usage: python bench/bench_decision.py [--quick]
"""
import argparse, json, os, platform, statistics, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import scipy
from scipy import optimize, sparse

from bayespilot.config import DataSettings, DecisionSettings, FeatureSettings
from bayespilot.decision import allocate, decide, decide_arrays, decide_batch, expected_values
from bayespilot.profit import policy_report

ROOT = Path(__file__).resolve().parent.parent
CAPACITY = {'review': 500, 'escalate': 50}


def timed(f, repeats):
    "Median and all wall-clock seconds of `repeats` calls of f(), and the last result."
    secs, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter(); out = f(); secs.append(time.perf_counter() - t0)
    return statistics.median(secs), secs, out


def lp_allocate(ev, capacity):
    "Baseline: the LP relaxation with HiGHS (integral optimum: the constraint matrix is totally unimodular)."
    n, g = ev.shape[0], ev[:, 1:] - ev[:, :1]
    A = sparse.vstack([sparse.hstack([sparse.identity(n)] * 2), sparse.kron(sparse.identity(2), np.ones((1, n)))]).tocsr()
    res = optimize.linprog(-g.T.ravel(), A_ub=A, b_ub=np.r_[np.ones(n), capacity['review'], capacity['escalate']], bounds=(0, 1), method='highs')
    assert res.success, res.message
    return -res.fun


def customers(n, seed=0):
    "Churn probabilities and values shaped like a real book: most customers at low risk, skewed values."
    rng = np.random.default_rng(seed)
    return rng.beta(1.5, 6, n), rng.gamma(4, 50, n)


def bench_allocation(n, repeats, lp_repeats):
    "Our exact allocation vs HiGHS on the same EV matrix; the optimal totals must agree."
    p, v = customers(n)
    ds = DecisionSettings()
    ev = expected_values(p, v, ds)
    ours, ours_all, x = timed(lambda: allocate(ev, CAPACITY), repeats)
    total = float(ev[np.arange(n), x].sum())
    lp, lp_all, lp_total = timed(lambda: lp_allocate(ev, CAPACITY), lp_repeats)
    assert abs(total - lp_total) <= 1e-6 * max(1.0, abs(lp_total)), (total, lp_total)
    batch, batch_all, _ = timed(lambda: decide_batch(p, v, ds, capacity=CAPACITY), repeats)
    free, free_all, _ = timed(lambda: decide_batch(p, v, ds), repeats)
    v_gaps = np.where(np.arange(n) % 100 == 0, np.nan, v)                      # 1 % missing values -> default, caller reports them
    gaps, _, _ = timed(lambda: decide_batch(p, v_gaps, ds, warn=False), repeats)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        decide_batch(p, v_gaps, ds)
    assert len(w) == 1, [str(x.message) for x in w]                            # one warning per call, not per row or per step
    return dict(n=n, capacity=CAPACITY, repeats=repeats, allocate_median_s=round(ours, 4), allocate_runs_s=[round(s, 4) for s in ours_all],
                highs_lp_median_s=round(lp, 4), highs_lp_runs_s=[round(s, 4) for s in lp_all], speedup_vs_highs=round(lp / ours, 1),
                total_ev=round(total, 4), highs_total_ev=round(lp_total, 4),
                decide_batch_capacitated_median_s=round(batch, 4), decide_batch_uncapacitated_median_s=round(free, 4),
                decide_batch_missing_values_median_s=round(gaps, 4),
                goal_s=2.0, goal_met=bool(ours < 2.0))


def bench_single(n=2000, seed=3):
    "One customer at a time, as the API decides: `decide` (scalar path) vs the vectorised helpers; identical results."
    p, v = customers(n, seed)
    p, v = p.tolist(), v.tolist()
    ds = DecisionSettings()
    for pi, vi in zip(p, v): assert decide(pi, vi, ds, warn=False) == decide_arrays(pi, vi, ds, False), (pi, vi)
    per_call = lambda f: statistics.median(timed(lambda: [f(pi, vi) for pi, vi in zip(p, v)], 5)[1]) / n
    scalar = per_call(lambda pi, vi: decide(pi, vi, ds, warn=False))
    vector = per_call(lambda pi, vi: decide_arrays(pi, vi, ds, False))
    return dict(n=n, decide_us=round(scalar * 1e6, 2), vectorised_us=round(vector * 1e6, 2), speedup=round(vector / scalar, 1), identical=True)


def bench_oracle(n, seed=7):
    "Model-policy / oracle-policy profit on n synthetic test rows (model: the shared pipeline + logistic regression on n other rows)."
    try:
        from bayespilot.data import prepare
        from bayespilot.features import make_pipeline
        from bayespilot.synthetic import generate
    except ImportError as e:
        return dict(skipped=f'bayespilot.synthetic / data / features not importable: {e}')
    from sklearn.linear_model import LogisticRegression
    df, truth = generate(2 * n, seed=seed)
    d = prepare(df, DataSettings())
    tr, te = np.arange(n), np.arange(n, 2 * n)
    pipe = make_pipeline(d.schema, FeatureSettings(), LogisticRegression(max_iter=2000)).fit(d.X.iloc[tr], d.y[tr])
    p = pipe.predict_proba(d.X.iloc[te])[:, 1]
    p_true = truth['churn_probability'].to_numpy()[te]
    value = None if d.value is None else d.value.to_numpy()[te]
    out = dict(n_train=n, n_test=n, seed=seed, model='logistic_regression (shared preprocessing)')
    for name, cap in (('uncapacitated', None), ('capacity_5000_1000', {'review': 5000, 'escalate': 1000})):
        rep = policy_report(d.y[te], p, value, DecisionSettings(), capacity=cap, p_true=p_true)
        out[name] = {pol: {k: (round(float(r[k]), 4) if isinstance(r[k], (int, float, np.floating, np.integer)) else r[k])
                           for k in ('share_contacted', 'realised_profit', 'expected_profit', 'realised_profit_vs_oracle', 'expected_profit_vs_oracle')}
                     for pol, r in rep.iterrows()}
    out['expected_value_vs_oracle'] = out['uncapacitated']['expected_value']['expected_profit_vs_oracle']
    out['goal'] = 0.97; out['goal_met'] = bool(out['expected_value_vs_oracle'] >= 0.97)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='fewer repeats and a smaller oracle run (smoke test, not for figures)')
    a = ap.parse_args(argv)
    res = dict(benchmark='decision', quick=a.quick, python=platform.python_version(), numpy=np.__version__, scipy=scipy.__version__,
               cpus=os.cpu_count(), load_avg=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None)
    res['allocation'] = bench_allocation(100_000, 5 if a.quick else 7, 1 if a.quick else 5)
    al = res['allocation']
    print(f"allocate 100 000 x 2 capacitated actions: median {al['allocate_median_s'] * 1e3:.0f} ms; "
          f"HiGHS LP {al['highs_lp_median_s']:.2f} s ({al['speedup_vs_highs']}x); same optimum {al['total_ev']:.2f}; "
          f"decide_batch {al['decide_batch_uncapacitated_median_s'] * 1e3:.0f} ms free / {al['decide_batch_capacitated_median_s'] * 1e3:.0f} ms capacitated / "
          f"{al['decide_batch_missing_values_median_s'] * 1e3:.0f} ms with 1 % missing values", flush=True)
    res['single'] = bench_single(500 if a.quick else 2000)
    print(f"one customer: decide {res['single']['decide_us']} us (vectorised helpers {res['single']['vectorised_us']} us, identical results)", flush=True)
    res['oracle'] = bench_oracle(20_000 if a.quick else 100_000)
    if 'skipped' in res['oracle']: print('oracle ratio skipped:', res['oracle']['skipped'])
    else: print(f"expected-value policy / oracle policy, expected profit on {res['oracle']['n_test']} synthetic rows: {res['oracle']['expected_value_vs_oracle']:.3f}")
    out = ROOT / 'reports' / 'bench'; out.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out, suffix='.tmp')
    with os.fdopen(fd, 'w') as f: json.dump(res, f, indent=2)
    dest = out / ('decision_quick.json' if a.quick else 'decision.json')   # a smoke run never overwrites the figures
    os.replace(tmp, dest)
    print('wrote', dest)
    return 0 if al['goal_met'] else 1


if __name__ == '__main__': sys.exit(main())

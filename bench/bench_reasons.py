"""Reason codes (issue 14): what exact contributions cost on the default deployed stack, side by side with the compiled
scorer without them (same process, same rows), per member kind (LR, RF, HGB) so it is clear where the time goes;
shap.TreeExplainer's per-row time on the stack's random forest as the named baseline; and the same forest bounded to
depth 8 (refitted on the same preprocessing) as the fix a deep forest needs.

Figures: reports/bench/reasons.json (+ reasons.png); reasons_quick.* with --quick. Every figure is the median of
--repeats runs (chunk throughput) or of the per-row times (latency). Chunk sizes: --rows for the logistic regression
(100 000 by default) and the boosting members, --tree-rows for the boosting members (they cost ~1 ms/row),
--rf-rows for the deep forest and the whole stack (exact TreeSHAP on it costs ~0.1-0.4 s/row).
Usage: python bench/bench_reasons.py [--quick] [--rows N] [--tree-rows N] [--rf-rows N] [--repeats R]
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, portable
from bench_score import deployed_model

import numpy as np, pandas as pd, joblib


def median_rate(fn, frame, repeats: int) -> dict:
    "Median rows/s (and seconds) of `fn(frame)` over `repeats` runs."
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(frame); ts.append(time.perf_counter() - t)
    s = float(np.median(ts))
    return {'rows': len(frame), 'seconds': round(s, 4), 'rows_per_s': round(len(frame) / s)}


def latency(fn, rows: list) -> dict:
    "p50 / p99 microseconds of `fn(row)` over `rows` (one call each, after one warm-up call)."
    fn(rows[0]); ts = []
    for r in rows:
        t = time.perf_counter(); fn(r); ts.append(time.perf_counter() - t)
    ts = np.array(ts) * 1e6
    return {'rows': len(rows), 'p50_us': round(float(np.percentile(ts, 50)), 1),
            'p99_us': round(float(np.percentile(ts, 99)), 1)}


def members(stack) -> dict:
    "{name: fitted member} of the deployed stack, and the stack itself."
    return {**dict(zip(stack.names_, stack.estimators_)), 'stack': stack}


def kind_of(name: str) -> str:
    "LR / RF / HGB / stack, from a member's name."
    return {'logistic_regression': 'LR', 'random_forest': 'RF'}.get(name, 'stack' if name == 'stack' else 'HGB')


def forest_pipeline(member):
    "The random forest pipeline inside a calibrated member (CalibratedClassifierCV -> LogOdds -> Pipeline)."
    est = member.calibrated_classifiers_[0].estimator
    return getattr(est, 'estimator_', est)


def shap_baseline(rf_pipe, rows: pd.DataFrame, ours_us: float) -> dict:
    "shap.TreeExplainer (path-dependent) per row on the forest's own input matrix, one row per call."
    try: import shap
    except ImportError: return {'skipped': 'shap not installed (a development dependency)'}
    M, rf = rf_pipe[:-1].transform(rows), rf_pipe.steps[-1][1]
    ex = shap.TreeExplainer(rf, feature_perturbation='tree_path_dependent')
    res = latency(lambda i: ex.shap_values(M[i:i + 1]), list(range(len(M))))
    return {**res, 'what': 'shap.TreeExplainer(rf, tree_path_dependent).shap_values, one row per call',
            'ours_p50_us': ours_us, 'shap_over_ours': round(res['p50_us'] / ours_us, 2)}


def bounded_forest(rf_pipe, depth: int, n_train: int, rows: list) -> dict:
    "The stack's forest refitted with max_depth=`depth` on synthetic customers: per-row TreeSHAP and score cost."
    from sklearn.base import clone
    from bayespilot.data import prepare
    from bayespilot.config import DataSettings
    from bayespilot.synthetic import generate
    from bayespilot.reasons import explainer
    from bayespilot.scorer import compile_scorer
    d = prepare(generate(n_train, seed=42)[0], DataSettings())
    p = clone(rf_pipe); p.set_params(model__max_depth=depth, model__n_jobs=1)
    p.fit(d.X, d.y)
    ex, sc = explainer(p), compile_scorer(p)
    return {'max_depth': depth, 'trained_on': n_train, 'n_estimators': p.steps[-1][1].n_estimators,
            'explain_row': latency(ex.explain_row, rows), 'score_row': latency(sc, rows)}


def plot(res: dict, path: Path):
    "Per-row latency, explain_row against the scorer alone, per member (log scale)."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(res['members'])
    ex = [res['members'][n]['explain_row']['p50_us'] for n in names]
    sc = [res['members'][n]['score_row']['p50_us'] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, sc, 0.4, label='compiled scorer (no reasons)')
    ax.bar(x + 0.2, ex, 0.4, label='explain_row (exact reasons)')
    if 'bounded_rf' in res:
        ax.bar(len(names) + 0.2, res['bounded_rf']['explain_row']['p50_us'], 0.4, color='tab:green',
               label=f"RF bounded to depth {res['bounded_rf']['max_depth']}")
        names = names + [f"RF depth {res['bounded_rf']['max_depth']}"]
    label = lambda n: n.replace('_', '\n') + ('' if n.startswith('RF depth') else f' ({kind_of(n)})')
    ax.set_xticks(range(len(names)), [label(n) for n in names], fontsize=7)
    ax.set_yscale('log'); ax.set_ylabel('p50 µs per row'); ax.legend(fontsize=8)
    ax.set_title('Reason codes: per-row cost on the default deployed stack')
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='small sizes (a smoke run, not for figures)')
    ap.add_argument('--rows', type=int, default=100_000); ap.add_argument('--tree-rows', type=int, default=5_000)
    ap.add_argument('--rf-rows', type=int, default=100); ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--latency-rows', type=int, default=300); ap.add_argument('--no-bounded', action='store_true')
    a = ap.parse_args(argv)
    if a.quick: a.rows, a.tree_rows, a.rf_rows, a.repeats, a.latency_rows = 5_000, 500, 10, 1, 50
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    from bayespilot.reasons import explainer, top_reasons
    from bayespilot.scorer import compile_scorer, random_rows
    from bayespilot.synthetic import generate
    from bayespilot.data import prepare
    from bayespilot.config import DataSettings
    tmp = Path(tempfile.mkdtemp(prefix='bench_reasons_'))
    model = deployed_model(tmp)
    stack = joblib.load(model)
    feats = stack.estimators_[0].steps[0][1].schema.features
    base = prepare(generate(a.rows, seed=7)[0], DataSettings()).X[feats]   # customers as `score` reads them
    rows = base.iloc[:a.latency_rows].to_dict('records')
    res = {'model': portable(model, tmp), 'cores': os.cpu_count(), 'threads': 1, 'repeats': a.repeats,
           'load_average_at_start': [round(x, 1) for x in os.getloadavg()],
           'note': 'exact reasons for every member; throughput sizes differ by member because path-dependent '
                   'TreeSHAP costs O(trees x leaves x depth^2) per row', 'members': {}}
    for name, m in members(stack).items():
        ex, sc, kind = explainer(m), compile_scorer(m), kind_of(name)
        n = {'LR': a.rows, 'HGB': a.tree_rows}.get(kind, a.rf_rows)
        frame, lat_rows = base.iloc[:n], rows if kind in ('LR', 'HGB') else rows[:max(10, a.rf_rows // 5)]
        e = ex.explain(frame.iloc[:50]); sc.batch(frame.iloc[:50])         # warm-up (numba is cached)
        r = {'kind': kind, 'explain': median_rate(ex.explain, frame, a.repeats),
             'score_batch': median_rate(sc.batch, frame, a.repeats),
             'explain_row': latency(ex.explain_row, lat_rows), 'score_row': latency(sc, lat_rows),
             'explain_row_top4': latency(lambda x: top_reasons(ex.explain_row(x)), lat_rows)}
        r['explain_slowdown'] = round(r['score_batch']['rows_per_s'] / r['explain']['rows_per_s'], 1)
        r['row_extra_p50_us'] = round(r['explain_row']['p50_us'] - r['score_row']['p50_us'], 1)
        res['members'][name] = r
        print(name, {k: r[k] for k in ('explain', 'score_batch', 'explain_row', 'score_row')}, flush=True)
    rf_name = next(n for n in stack.names_ if kind_of(n) == 'RF')
    rf_pipe = forest_pipeline(members(stack)[rf_name])
    ex_rf = explainer(rf_pipe)
    ours = latency(lambda x: ex_rf.part.margin(x, {}), rows[:max(10, a.rf_rows // 5)])
    res['shap_baseline_rf'] = shap_baseline(rf_pipe, base.iloc[:max(10, a.rf_rows // 5)], ours['p50_us'])
    print('shap', res['shap_baseline_rf'], flush=True)
    if not a.no_bounded:
        res['bounded_rf'] = bounded_forest(rf_pipe, 8, 5_000 if a.quick else 20_000, rows[:100])
        print('bounded', res['bounded_rf'], flush=True)
    st = res['members']['stack']
    res['summary'] = {'stack_explain_rows_per_s': st['explain']['rows_per_s'],
                      'stack_score_rows_per_s': st['score_batch']['rows_per_s'],
                      'stack_row_extra_p50_us': st['row_extra_p50_us'],
                      'goal': 'score with reasons >= 50 000 rows/s; explain_row p50 <= 1 000 us above the scorer'}
    res['load_average_at_end'] = [round(x, 1) for x in os.getloadavg()]
    name = 'reasons_quick' if a.quick else 'reasons'
    out = ROOT/'reports'/'bench'/f'{name}.json'
    out.write_text(json.dumps(res, indent=2) + '\n'); plot(res, out.with_suffix('.png'))
    print(f'figures: {portable(out)}')


if __name__ == '__main__': main()

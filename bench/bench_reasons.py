"""Reason codes (issue 14): what exact contributions cost, old against new in the same run.

- new: `bayespilot.reasons` with Linear TreeSHAP (bayespilot.treeshap: O(nodes x depth) per tree and row, leaf pairs
  from tables, numba; the batch path in parallel over rows);
- old: the implementation it replaced, loaded from git (`--old-rev`, the last commit with Algorithm 2: path-dependent
  TreeSHAP over the subsets of path features, O(leaves x depth^2), and the earlier Python layer of reasons.py), run
  on the same fitted objects;
- baseline: the compiled scorer without reasons (`scorer.compile_scorer`), and shap.TreeExplainer on the forest.

Per member of the default deployed stack (LR, sigmoid-calibrated random forest, HGB) and for the stack: explain_row
p50/p99 (one raw customer dict, also with the top-4 texts), the chunk path's rows/s with 1 thread and with all numba
threads, and the same for the scorer; per tree model the TreeSHAP kernel alone (margin contributions of a
preprocessed row). With --deep, the same for the forest of the deep model Stage 2 deployed before max_depth 10
(/work/ref/exp/deployed_pipeline_deep.pkl, or --deep PATH).

Figures: reports/bench/reasons.json (+ reasons.png); reasons_quick.* with --quick. Latency: the median / 99th
percentile of per-row times; throughput: the median of --repeats runs. The load average is recorded at start and
end (the machine is shared: compare the columns of one run, not runs).
Usage: python bench/bench_reasons.py [--quick] [--rows N] [--rf-rows N] [--repeats R] [--deep [PATH]]
"""
import argparse, importlib, json, os, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, portable
from bench_score import deployed_model

import numpy as np, pandas as pd, joblib

OLD_REV = 'e73dd4e'          # the last commit with Algorithm 2 in bayespilot/treeshap.py
DEEP = Path('/work/ref/exp/deployed_pipeline_deep.pkl')


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


def old_package(rev: str, tmp: Path):
    "The package as committed at `rev`, importable as `bayespilot_old` (None, and why, without git or the commit)."
    try:
        names = subprocess.run(['git', '-C', str(ROOT), 'ls-tree', '--name-only', rev, 'bayespilot/'], check=True,
                               capture_output=True, text=True).stdout.split()
        dest = tmp/'bayespilot_old'; dest.mkdir()
        for n in names:
            if n.endswith('.py'):
                (dest/Path(n).name).write_bytes(subprocess.run(['git', '-C', str(ROOT), 'show', f'{rev}:{n}'],
                                                               check=True, capture_output=True).stdout)
    except (OSError, subprocess.CalledProcessError) as e: return None, f'old implementation not available: {e}'
    sys.path.insert(0, str(tmp))
    old = importlib.import_module('bayespilot_old.reasons')
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import Pipeline
    from bayespilot.calibration import LogOdds
    from bayespilot.features import SchemaCoercer
    from bayespilot.stacking import Stack
    old.SchemaCoercer = SchemaCoercer                       # the fitted objects are today's classes
    old.PARTS = {Pipeline: old.PipelinePart, LogOdds: old.LogOddsPart, CalibratedClassifierCV: old.CalibratedPart,
                 Stack: old.StackPart}
    return old, f'git {rev}: Algorithm 2 (O(leaves x depth^2)) and the Python layer of that commit'


def kernel(trees, M, rows: int, repeats: int, old_shap=None) -> dict:
    "The TreeSHAP kernel alone on preprocessed rows: per row (p50/p99) and a batch of `rows`; the old one if given."
    out = {'nodes': int(len(trees.left)), 'trees': int(len(trees.roots)), 'depth': int(trees.depth)}
    out['new_row'] = latency(lambda x: trees.shap_row(x), list(M[:rows]))
    out['new_batch'] = median_rate(trees.shap, M, repeats)
    if old_shap is not None:
        k = max(5, rows // 10)
        out['old_row'] = latency(lambda x: old_shap(x[None]), list(M[:k]))
        out['old_batch'] = median_rate(old_shap, M[:k * 2], 1)
        out['row_speedup'] = round(out['old_row']['p50_us'] / out['new_row']['p50_us'], 1)
    return out


def shap_baseline(rf_pipe, rows: pd.DataFrame, ours_us: float) -> dict:
    "shap.TreeExplainer (path-dependent) per row on the forest's own input matrix, one row per call."
    try: import shap
    except ImportError: return {'skipped': 'shap not installed (a development dependency)'}
    M, rf = rf_pipe[:-1].transform(rows), rf_pipe.steps[-1][1]
    ex = shap.TreeExplainer(rf, feature_perturbation='tree_path_dependent')
    res = latency(lambda i: ex.shap_values(M[i:i + 1]), list(range(len(M))))
    return {**res, 'what': 'shap.TreeExplainer(rf, tree_path_dependent).shap_values, one row per call',
            'ours_p50_us': ours_us, 'shap_over_ours': round(res['p50_us'] / ours_us, 1)}


def member_figures(name, m, base, rows, a, old) -> dict:
    "Scorer, new explainer and old explainer on one member (or the stack): per row and per chunk."
    import numba
    from bayespilot.reasons import explainer, top_reasons
    from bayespilot.reason_codes import reason_columns
    from bayespilot.scorer import compile_scorer
    ex, sc, kind = explainer(m), compile_scorer(m), kind_of(name)
    frame = base.iloc[:a.rows if kind in ('LR', 'HGB') else a.rf_rows]
    ex.explain(frame.iloc[:50]); sc.batch(frame.iloc[:50])
    r = {'kind': kind, 'score_row': latency(sc, rows), 'explain_row': latency(ex.explain_row, rows),
         'explain_row_top4': latency(lambda x: top_reasons(ex.explain_row(x)), rows),
         'score_batch': median_rate(sc.batch, frame, a.repeats)}
    numba.set_num_threads(1)
    r['explain_batch_1_thread'] = median_rate(ex.explain, frame, a.repeats)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    r['explain_batch'] = {**median_rate(ex.explain, frame, a.repeats), 'threads': numba.get_num_threads()}
    r['explain_batch_with_reason_columns'] = median_rate(lambda f: reason_columns(ex.explain(f), 4), frame, a.repeats)
    r['row_extra_p50_us'] = round(r['explain_row']['p50_us'] - r['score_row']['p50_us'], 1)
    if old is not None:
        oe = old.explainer(m)
        k = rows if kind == 'LR' else rows[:max(5, len(rows) // 10)]
        r['old_explain_row'] = latency(oe.explain_row, k)
        r['old_explain_row_top4'] = latency(lambda x: old.top_reasons(oe.explain_row(x)), k)
        r['old_explain_batch'] = median_rate(oe.explain, frame.iloc[:len(frame) if kind == 'LR' else 2 * len(k)], 1)
        r['row_speedup'] = round(r['old_explain_row']['p50_us'] / r['explain_row']['p50_us'], 1)
        r['batch_speedup'] = round(r['explain_batch_1_thread']['rows_per_s'] / r['old_explain_batch']['rows_per_s'], 1)
    print(name, {k: v for k, v in r.items() if k in ('score_row', 'explain_row', 'old_explain_row', 'explain_batch',
                                                     'old_explain_batch')}, flush=True)
    return r


def forest_kernel(rf_pipe, base, a, old) -> dict:
    "The forest's TreeSHAP kernel, old and new, on its own preprocessed rows."
    from bayespilot.reasons import explainer
    part = explainer(rf_pipe).part
    M = part.trees.rows(part.prep.matrix(base.iloc[:a.rf_rows]))
    old_shap = None
    if old is not None:
        ota = importlib.import_module('bayespilot_old.treeshap').tree_arrays(part.model)
        old_shap = lambda X: ota.shap(X)
    return kernel(part.trees, M, min(a.latency_rows, len(M)), a.repeats, old_shap)


def plot(res: dict, path: Path):
    "Per-row p50 latency per member: scorer, new explain_row, old explain_row (log scale)."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(res['members'])
    bars = [('compiled scorer (no reasons)', 'score_row'), ('explain_row, Linear TreeSHAP', 'explain_row'),
            ('explain_row, before (Algorithm 2)', 'old_explain_row')]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (label, key) in enumerate(bars):
        v = [res['members'][n].get(key, {}).get('p50_us', np.nan) for n in names]
        ax.bar(x + (i - 1) * 0.27, v, 0.27, label=label)
    ax.set_xticks(x, [f"{n.replace('_', ' ')}\n({res['members'][n]['kind']})" for n in names], fontsize=8)
    ax.set_yscale('log'); ax.set_ylabel('p50 µs per customer'); ax.legend(fontsize=8)
    ax.axhline(1000, color='grey', lw=0.8, ls='--'); ax.text(x[-1] + 0.45, 1050, '1 ms', fontsize=7, ha='right')
    ax.set_title('Reason codes per request, default deployed stack (same run)')
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='small sizes (a smoke run, not for figures)')
    ap.add_argument('--rows', type=int, default=50_000, help='chunk rows for LR and HGB')
    ap.add_argument('--rf-rows', type=int, default=5_000, help='chunk rows for the forest and the stack')
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--latency-rows', type=int, default=300)
    ap.add_argument('--old-rev', default=OLD_REV); ap.add_argument('--no-old', action='store_true')
    ap.add_argument('--deep', nargs='?', const=str(DEEP), default=None, help='also the deep forest of PATH')
    a = ap.parse_args(argv)
    if a.quick: a.rows, a.rf_rows, a.repeats, a.latency_rows = 3_000, 300, 1, 40
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    from bayespilot.reasons import explainer
    from bayespilot.synthetic import generate
    from bayespilot.data import prepare
    from bayespilot.config import DataSettings
    tmp = Path(tempfile.mkdtemp(prefix='bench_reasons_'))
    model = deployed_model(tmp)
    stack = joblib.load(model)
    feats = stack.estimators_[0].steps[0][1].schema.features
    base = prepare(generate(max(a.rows, a.rf_rows), seed=7)[0], DataSettings()).X[feats]   # as `score` reads them
    rows = base.iloc[:a.latency_rows].to_dict('records')
    old, old_what = (None, 'skipped (--no-old)') if a.no_old else old_package(a.old_rev, tmp)
    res = {'model': portable(model, tmp), 'cores': os.cpu_count(), 'repeats': a.repeats, 'old': old_what,
           'load_average_at_start': [round(x, 2) for x in os.getloadavg()],
           'note': 'latency is wall time on a shared 2-core machine; old and new ran on the same objects in this run',
           'members': {}}
    for name, m in members(stack).items(): res['members'][name] = member_figures(name, m, base, rows, a, old)
    rf_pipe = forest_pipeline(members(stack)[next(n for n in stack.names_ if kind_of(n) == 'RF')])
    res['forest_kernel'] = forest_kernel(rf_pipe, base, a, old)
    print('forest kernel', res['forest_kernel'], flush=True)
    rf_part = explainer(rf_pipe).part
    ours = latency(lambda x: rf_part.margin(x, {}), rows[:20])['p50_us']
    res['shap_baseline_rf'] = shap_baseline(rf_pipe, base.iloc[:20], ours)
    if a.deep and Path(a.deep).exists():
        deep = forest_pipeline(members(joblib.load(a.deep))['random_forest'])
        res['deep_forest_kernel'] = {'model': portable(a.deep, tmp), **forest_kernel(deep, base, a, old)}
        print('deep forest kernel', res['deep_forest_kernel'], flush=True)
    st = res['members']['stack']
    res['summary'] = {'stack_row_extra_p50_us': st['row_extra_p50_us'],
                      'stack_explain_row_p50_us': st['explain_row']['p50_us'],
                      'stack_old_explain_row_p50_us': st.get('old_explain_row', {}).get('p50_us'),
                      'stack_explain_rows_per_s': st['explain_batch']['rows_per_s'],
                      'stack_explain_with_reason_columns_rows_per_s':
                          st['explain_batch_with_reason_columns']['rows_per_s'],
                      'stack_score_rows_per_s': st['score_batch']['rows_per_s'],
                      'goal': 'explain_row p50 <= 1 000 us above the scorer; score with reasons >= 50 000 rows/s'}
    res['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
    name = 'reasons_quick' if a.quick else 'reasons'
    out = ROOT/'reports'/'bench'/f'{name}.json'
    out.write_text(json.dumps(res, indent=2) + '\n'); plot(res, out.with_suffix('.png'))
    print(json.dumps(res['summary'], indent=1)); print(f'figures: {portable(out)}')


if __name__ == '__main__': main()

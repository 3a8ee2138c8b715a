"""Batch scoring (`bayespilot score`) on the default deployed model, side by side with the deployed pipeline's own
`predict_proba` on the same rows, and on Spark local[2] next to `mlflow.pyfunc.spark_udf` alone.

Every run is its own process, so each peak RSS is that run's (os.wait4). Sizes 100 k, 1 M and 5 M customers, CSV
and Parquet input, capacities review=500,escalate=50; each figure is the median of --repeat runs (5 M: one run
each, said in the JSON). The same process also records a per-stage profile on 100 k rows and each tree model's
compiled walk next to scikit-learn's own predict on the same trees and the same input matrix. Figures:
reports/bench/score.json and score.png (score_quick.json with --quick).
A reasons leg scores a small sample three times: without reasons, with `--reasons` (the call list) and with
`--reasons all`. Split a long run into several bench-lock holds with --sizes, --no-baseline and --merge (each hold
adds its runs to the same JSON; the figures of legs not rerun are kept and say when they were measured).
Usage: python bench/bench_score.py [--quick] [--no-spark] [--no-5m] [--repeat 3] [--sizes 100000,300000]
       [--no-baseline] [--merge] [--reasons-rows 2000] [--no-profile]
"""
import argparse, json, os, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, portable

CAPACITY = 'review=500,escalate=50'

RUN_SCORE = """
import json, sys, time
from bayespilot.config import Settings
from bayespilot.score import score_file
why = {} if len(sys.argv) < 7 or sys.argv[6] == 'none' else {'reasons': 4, 'reasons_for': sys.argv[6]}
s = score_file(Settings(paths={'reports': sys.argv[4]}), sys.argv[1], sys.argv[2], model=sys.argv[3],
               capacity=sys.argv[5], chunk_rows=100_000, progress=False, track=False, overwrite=True, **why)
print(json.dumps(s))
"""

RUN_BASELINE = """
import json, sys, time
import numpy as np, pandas as pd, joblib
pipe = joblib.load(sys.argv[1]); X = pd.read_parquet(sys.argv[2])
t = time.perf_counter(); p = pipe.predict_proba(X)[:, 1]; dt = time.perf_counter() - t
np.save(sys.argv[3], p)
print(json.dumps({'rows': len(X), 'seconds': dt, 'rows_per_s': len(X) / dt}))
"""

RUN_PROFILE = """
import json, statistics, sys, time
import numpy as np, pandas as pd
from bayespilot.config import Settings
from bayespilot.model_store import load_model
from bayespilot.score_io import TableWriter, read_chunks, row_warnings
from bayespilot.decision import decide_batch
from bayespilot.holdout import holdout_arm, no_id_warnings
from bayespilot.score_plan import call_plan, chunk_decisions, id_arm
from bayespilot.score import decision_table
import pyarrow as pa, tempfile, pathlib
from bayespilot.trees import join_trees, sklearn_tree_nodes, hgb_tree_nodes, walk_rows
m = load_model(sys.argv[1], Settings()); reps = int(sys.argv[4])
def med(fn):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); r = fn(); ts.append(time.perf_counter() - t)
    return round(statistics.median(ts), 4), r
out, walks = {}, {}
out['read_csv'], df = med(lambda: next(read_chunks(sys.argv[2], m.schema, 100_000)))
out['read_parquet'], df = med(lambda: next(read_chunks(sys.argv[3], m.schema, 100_000)))
X, n = df[m.schema.features], len(df)
from bayespilot.scorer import compile_scorer
lr = compile_scorer(m.pipeline.estimators_[0])      # the LR member: coerce + preprocessing (shared) + a dot product
out['coerce_preprocess_lr'], _ = med(lambda: lr.batch(X))
sc = compile_scorer(m.pipeline)
out['compiled_total'], p = med(lambda: sc.batch(X))
out['pipeline_predict_proba'], q = med(lambda: m.pipeline.predict_proba(X)[:, 1])
out['max_abs_dp'] = float(np.abs(p - q).max())
out['row_warnings'], w = med(lambda: row_warnings(df, m.schema))
v = np.full(n, 100.0)
out['decide_batch_capacity (before)'], _ = med(lambda: decide_batch(p, v, m.decision, warn=False,
                                                                    capacity={'review': 500, 'escalate': 50}))
ds, ids = m.decision, df['customer_id']
out['holdout_arm+no_id_warnings (before)'], _ = med(lambda: (holdout_arm(ids, ds.experiment, ds.holdout_share),
                                                             no_id_warnings(ids, w, ds.holdout_share)))
out['id_arm'], (arm, _) = med(lambda: id_arm(ids, ds.experiment, ds.holdout_share))
caps = {'review': 500, 'escalate': 50}
out['call_plan'], plan = med(lambda: call_plan(p, v, arm, ds, caps))
out['chunk_decisions'], dec = med(lambda: chunk_decisions(plan, p, v, arm, ds))
spilled = pa.table({'id': pa.array(ids.astype(object), pa.string()), 'warnings': pa.array(w, pa.string())})
out['decision_table'], tab = med(lambda: decision_table(spilled, p, dec, 'customer_id', m.version, m.policy_version))
def write():
    tw = TableWriter(pathlib.Path(tempfile.mkdtemp()) / 'o.parquet'); tw.write(tab); tw.commit()
out['write_parquet'], _ = med(write)
def models(est, path=''):
    "(name, fitted tree model, its fitted preprocessing) of every forest / boosting model inside the stack."
    from sklearn.pipeline import Pipeline
    from sklearn.calibration import CalibratedClassifierCV
    for i, e in enumerate(getattr(est, 'estimators_', [])):
        if isinstance(e, CalibratedClassifierCV): e = e.calibrated_classifiers_[0].estimator
        e = getattr(e, 'estimator_', e)
        if isinstance(e, Pipeline) and type(e.steps[-1][1]).__name__ in ('RandomForestClassifier',
                                                                        'HistGradientBoostingClassifier'):
            yield f'member{i}_{type(e.steps[-1][1]).__name__}', e.steps[-1][1], e[:-1]
import numba
for name, mod, pre in models(m.pipeline):
    Mx = pre.transform(X)
    if hasattr(mod, 'estimators_'): f = join_trees([sklearn_tree_nodes(t) for t in mod.estimators_], True)
    else: f = join_trees([hgb_tree_nodes(pr[0]) for pr in mod._predictors], False)
    row = {'sklearn_predict_proba': med(lambda: mod.predict_proba(Mx))[0]}
    for nt in (1, 2):
        numba.set_num_threads(nt); row[f'walk_blocks_{nt}_threads'] = med(lambda: f.totals(Mx))[0]
        Mw = np.ascontiguousarray(Mx.astype(np.float32).astype(float) if f.float32 else Mx)
        row[f'walk_rows_{nt}_threads (before)'] = med(lambda: walk_rows(Mw, f.packed, f.roots))[0]
    numba.set_num_threads(2)
    row['nodes'], row['trees'] = int(len(f.leaf)), int(len(f.roots))
    row['us_per_row'] = {k: round(v / n * 1e6, 2) for k, v in row.items() if isinstance(v, float)}
    walks[name] = row
print(json.dumps({'rows': n, 'seconds': out, 'us_per_row': {k: round(v / n * 1e6, 2) for k, v in out.items()
                                                           if k != 'max_abs_dp'}, 'walks': walks}))
"""

RUN_SPARK = """
import json, sys, time
from bayespilot.config import Settings
from bayespilot.spark import score_file_spark, spark_session
spark = spark_session('local[2]')
spark.range(10).count()                                   # start-up (JVM, first job) kept out of the timed region
for batch in sys.argv[6].split(','):
    t = time.perf_counter()
    s = score_file_spark(Settings(paths={'reports': sys.argv[4]}), sys.argv[1], sys.argv[2] + f'_{batch}.parquet',
                         model=sys.argv[3], capacity=sys.argv[5], chunk_rows=int(batch), progress=False, track=False,
                         spark=spark, overwrite=True)
    s['wall_seconds'] = time.perf_counter() - t; s['batch'] = int(batch)
    print(json.dumps(s), flush=True)
spark.stop()
"""

RUN_SPARK_UDF = """
import json, os, sys, time
import joblib, mlflow, pandas as pd
from pyspark.sql import functions as F
from bayespilot.spark import spark_session
from bayespilot.tracking import ChurnProbability
pipe = joblib.load(sys.argv[1]); X = pd.read_parquet(sys.argv[2]).head(1000)
mlflow.set_tracking_uri('sqlite:///' + sys.argv[3] + '/mlflow.db')
with mlflow.start_run():
    info = mlflow.sklearn.log_model(ChurnProbability(pipe), name='model', serialization_format='cloudpickle',
                                    input_example=None)
spark = spark_session('local[2]')
sdf = spark.read.parquet(sys.argv[2]); n = sdf.count()
udf = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type='double', env_manager='local')
t = time.perf_counter()
sdf.withColumn('p', udf(F.struct(*[F.col(c) for c in X.columns]))).write.format('noop').mode('overwrite').save()
dt = time.perf_counter() - t
print(json.dumps({'rows': n, 'seconds': dt, 'rows_per_s': n / dt})); spark.stop()
"""


def run_rss(code: str, *args) -> dict:
    "Run `code` in a fresh interpreter; its last JSON line (all of them under 'lines'), with the child's peak RSS."
    env = {**os.environ, 'PYSPARK_PYTHON': sys.executable, 'MLFLOW_DISABLE_TELEMETRY': 'true'}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w, 1); os.close(r)
        os.execve(sys.executable, [sys.executable, '-c', code, *map(str, args)], env)
    os.close(w)
    with os.fdopen(r) as f: out = f.read()
    _, status, usage = os.wait4(pid, 0)
    if status: raise RuntimeError(f'exit status {status}')
    lines = [json.loads(l) for l in out.strip().splitlines() if l.startswith('{')]
    res = dict(lines[-1]); res['lines'] = lines
    res['peak_rss_mib'] = round(usage.ru_maxrss / 1024, 1)
    res['process_cpu_s'] = round(usage.ru_utime + usage.ru_stime, 2)   # the whole process, load included
    return res


def deployed_model(tmp: Path) -> Path:
    "The default deployed model, verified; an artifact saved before cards were sealed is re-saved (same object)."
    from bayespilot.config import Settings
    from bayespilot.model_store import load_model
    src = ROOT/'models'/'artifacts'/'deployed_pipeline.pkl'
    try: load_model(src, Settings()); return src
    except Exception as e:
        import joblib
        from bayespilot.artifacts import save_artifact
        print(f'note: {e}; benchmarking a re-sealed copy of the same fitted object', file=sys.stderr)
        card = json.loads(src.with_suffix('.json').read_text())
        keep = {k: card[k] for k in card if k not in ('sha256', 'size_bytes', 'created_at', 'artifact', 'card_sha256',
                                                      'signature', 'library_versions')}
        save_artifact(joblib.load(src), tmp/'deployed_pipeline.pkl', keep)
        return tmp/'deployed_pipeline.pkl'


def base_files(n: int, tmp: Path) -> dict:
    "A synthetic base of `n` customers as CSV and Parquet (the generator's table, as a user's file), 1 M at a time."
    import pyarrow.parquet as pq
    from bayespilot.synthetic import generate
    from bayespilot.data import read_table
    csv, pqf, feats = tmp/f'base_{n}.csv', tmp/f'base_{n}.parquet', tmp/f'features_{n}.parquet'
    writers = {}
    for i, start in enumerate(range(0, n, 1_000_000)):
        t, _ = generate(min(1_000_000, n - start), seed=100 + i)
        t = t.drop(columns='churned'); t['customer_id'] = t['customer_id'] + f'-{i}'
        part = tmp/f'part_{n}_{i}.csv'; t.to_csv(part, index=False)
        with open(csv, 'ab') as out, open(part, 'rb') as src:
            if i: src.readline()
            out.write(src.read())
        df = read_table(part); part.unlink()
        for path, frame in ((pqf, df), (feats, df.drop(columns=['customer_id', 'clv']))):
            import pyarrow as pa
            tab = pa.Table.from_pandas(frame, preserve_index=False)
            if path not in writers: writers[path] = pq.ParquetWriter(path, tab.schema)
            writers[path].write_table(tab, row_group_size=100_000)
    for w in writers.values(): w.close()
    return {'csv': csv, 'parquet': pqf, 'features': feats}


def median_runs(runs: list[dict]) -> dict:
    "The run with the median rows/s, with every run's rows/s and the largest peak RSS."
    runs = sorted(runs, key=lambda r: r['rows_per_s'])
    mid = dict(runs[len(runs) // 2])
    mid['all_rows_per_s'] = [r['rows_per_s'] for r in runs]
    mid['max_peak_rss_mib'] = max(r['peak_rss_mib'] for r in runs)
    return mid


def merged(old: dict, new: dict) -> dict:
    "`new` over `old`: runs replaced by (engine, input, rows), legs not rerun kept with the date they were measured."
    key = lambda r: (r['engine'], r['input'], r['rows'])
    fresh = {key(r) for r in new['runs']}
    out = {**{k: v for k, v in old.items() if k not in ('runs',)}, **{k: v for k, v in new.items() if k != 'runs'}}
    out['runs'] = [r for r in old.get('runs', []) if key(r) not in fresh] + new['runs']
    for k in ('baseline', 'spark', 'profile', 'reasons'):
        if k in old and k not in new: out[k] = {**old[k], 'measured': old[k].get('measured', old.get('date'))}
    out['load_average_by_hold'] = old.get('load_average_by_hold', []) + [new['load_average_start']]
    b = out.get('baseline')
    if b: out['speedup_vs_predict_proba'] = {r['input']: round(r['rows_per_s'] / b['rows_per_s'], 2)
                                             for r in out['runs'] if r['rows'] == b['rows'] and r['engine'] == 'local'}
    return out


def plot(res: dict, path: Path) -> None:
    "Rows/s and peak RSS against rows, CSV and Parquet, with the baseline: the PNG next to the JSON."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for kind, mk in (('csv', 'o-'), ('parquet', 's-')):
        rs = sorted((r for r in res['runs'] if r['input'] == kind), key=lambda r: r['rows'])
        a.plot([r['rows'] for r in rs], [r['seconds'] for r in rs], mk, label=f'bayespilot score ({kind})')
        b.plot([r['rows'] for r in rs], [r['peak_rss_mib'] for r in rs], mk, label=f'bayespilot score ({kind})')
    bl = res['baseline']
    a.plot([bl['rows']], [bl['seconds']], 'kx', ms=10, label='predict_proba (in memory)')
    b.plot([bl['rows']], [bl['peak_rss_mib']], 'kx', ms=10, label='predict_proba (in memory)')
    a.set(xscale='log', yscale='log', xlabel='customers', ylabel='seconds (median)', title='scoring time (load excluded)')
    b.set(xscale='log', xlabel='customers', ylabel='peak RSS (MiB)', title='peak RSS (chunks of 100 000 rows)')
    b.axhline(1024, color='r', ls=':', label='1 GiB'); b.set_ylim(0, None)
    for ax in (a, b): ax.grid(alpha=.3); ax.legend(fontsize=8)
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='20 k and 100 k rows, one run each, no 5 M (a smoke run)')
    ap.add_argument('--no-spark', action='store_true'); ap.add_argument('--no-5m', action='store_true')
    ap.add_argument('--repeat', type=int, default=3, help='runs per figure, the median reported (default 3)')
    ap.add_argument('--spark-rows', type=int, default=300_000, help='rows of the Spark comparison (default 300 000)')
    ap.add_argument('--spark-batches', default='10000,100000', help='Arrow batch sizes (maxRecordsPerBatch) to try')
    ap.add_argument('--sizes', type=lambda s: [int(float(x)) for x in s.split(',')],
                    help='row counts to run instead, e.g. 100000,300000 (the baseline uses 1 M or the largest)')
    ap.add_argument('--name', default='score', help='figures file reports/bench/NAME.json (default: score)')
    ap.add_argument('--no-baseline', action='store_true', help='skip the predict_proba baseline (kept with --merge)')
    ap.add_argument('--no-profile', action='store_true', help='skip the per-stage profile (kept with --merge)')
    ap.add_argument('--merge', action='store_true', help='add these runs to the existing JSON instead of replacing it')
    ap.add_argument('--reasons-rows', type=int, default=2000, help='rows of the reasons leg (0: skip it)')
    a = ap.parse_args(argv)
    reps = 1 if a.quick else a.repeat
    sizes = a.sizes or ([20_000, 100_000] if a.quick else [100_000, 1_000_000] + ([] if a.no_5m else [5_000_000]))
    main_n = 1_000_000 if 1_000_000 in sizes else max(sizes)
    tmp = Path(tempfile.mkdtemp(prefix='bench_score_'))
    model = deployed_model(tmp)
    import numpy as np, pandas as pd
    res = {'model': portable(model, tmp), 'capacity': CAPACITY, 'chunk_rows': 100_000, 'cores': os.cpu_count(),
           'repeat': reps, 'load_average_start': os.getloadavg(), 'generation_seconds': {}, 'runs': [],
           'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}
    out = ROOT/'reports'/'bench'/(f'{a.name}_quick.json' if a.quick else f'{a.name}.json')
    old = json.loads(out.read_text()) if a.merge and out.exists() else None
    save = lambda: out.write_text(json.dumps(res if old is None else merged(old, res), indent=2) + '\n')
    files = {}
    def base(n):
        "The base of `n` rows, generated on first use (its generation time recorded)."
        if n not in files:
            t = time.perf_counter(); files[n] = base_files(n, tmp)
            res['generation_seconds'][str(n)] = round(time.perf_counter() - t, 1)
            print(f'{n:,} rows generated in {time.perf_counter() - t:.0f} s', flush=True)
        return files[n]
    def local_runs(n):
        "Median of `reps` scoring runs of `n` rows (one above 1 M), CSV and Parquet."
        for kind in ('csv', 'parquet'):
            runs = [run_rss(RUN_SCORE, base(n)[kind], tmp/f'out_{n}_{kind}.parquet', model, tmp/'reports', CAPACITY)
                    for _ in range(1 if n > 1_000_000 else reps)]
            s = median_runs(runs)
            res['runs'].append({'engine': 'local', 'input': kind, 'rows': n, 'runs': len(runs), 'seconds': s['seconds'],
                                'rows_per_s': s['rows_per_s'], 'all_rows_per_s': s['all_rows_per_s'],
                                'peak_rss_mib': s['max_peak_rss_mib'], 'load_seconds': s['load_seconds'],
                                'counts': s['counts'], 'expected_profit': s['expected_profit'],
                                'process_cpu_s': s['process_cpu_s'], 'threads': s.get('threads')})
            print(res['runs'][-1], flush=True); save()
    for n in sorted(x for x in sizes if x <= 1_000_000): local_runs(n)
    if a.reasons_rows:
        n, big = a.reasons_rows, min(sizes)
        sample = tmp/f'sample_{n}.parquet'; pd.read_parquet(base(big)['parquet']).head(n).to_parquet(sample)
        legs = {(mode, f): run_rss(RUN_SCORE, f, tmp/f'why_{mode}_{k}.parquet', model, tmp/'reports', CAPACITY, mode)
                for k, f in ((n, sample), (big, base(big)['parquet'])) for mode in ('none', 'contacted', 'all')
                if not (mode == 'all' and f != sample)}          # every row explained: the small sample only
        res['reasons'] = {'capacity': CAPACITY, 'runs': [{'rows': r['rows'], 'reasons': mode,
                          'rows_per_s': r['rows_per_s'], 'seconds': r['seconds'],
                          'rows_with_reasons': r.get('rows_with_reasons')} for (mode, _), r in legs.items()],
                          'note': 'one run each, top 4 reasons; contacted = the call list after the global allocation '
                                  '(policy_action not monitor); all = every row'}
        print('reasons', res['reasons'], flush=True); save()
    if a.no_baseline:
        for n in sorted(x for x in sizes if x > 1_000_000): local_runs(n)
        res['load_average_end'] = os.getloadavg(); save(); print(f'figures: {portable(out)}')
        final = res if old is None else merged(old, res)
        if 'baseline' in final: plot(final, out.with_suffix('.png'))
        return
    bs = [run_rss(RUN_BASELINE, model, base(main_n)['features'], tmp/'baseline_p.npy') for _ in range(reps)]
    b = median_runs(bs)
    res['baseline'] = {'what': 'deployed pipeline predict_proba (in memory, probabilities only)', 'rows': main_n,
                       'runs': len(bs), 'rows_per_s': round(b['rows_per_s']), 'all_rows_per_s':
                       [round(x) for x in b['all_rows_per_s']], 'seconds': round(b['seconds'], 2),
                       'peak_rss_mib': b['max_peak_rss_mib'], 'process_cpu_s': b['process_cpu_s']}
    local = {r['input']: r for r in res['runs'] if r['rows'] == main_n}
    res['speedup_vs_predict_proba'] = {k: round(r['rows_per_s'] / b['rows_per_s'], 2) for k, r in local.items()}
    got = pd.read_parquet(tmp/f'out_{main_n}_parquet.parquet', columns=['churn_probability'])['churn_probability']
    res['max_abs_dp_vs_predict_proba'] = float(np.abs(got.to_numpy() - np.load(tmp/'baseline_p.npy')).max())
    save(); print('baseline', res['baseline'], 'speed-up', res['speedup_vs_predict_proba'],
          'max |dp|', res['max_abs_dp_vs_predict_proba'], flush=True)
    n0 = min(sizes, key=lambda x: abs(x - 100_000))
    if not a.no_profile:
        res['profile'] = run_rss(RUN_PROFILE, model, base(n0)['csv'], base(n0)['parquet'], reps)
        res['profile'].pop('lines', None)
        print('profile', json.dumps(res['profile']), flush=True); save()
    if not a.no_spark:
        n = a.spark_rows
        loc = median_runs([run_rss(RUN_SCORE, base(n)['parquet'], tmp/f'local_{n}.parquet', model, tmp/'reports',
                                   CAPACITY) for _ in range(reps)])
        sp = run_rss(RUN_SPARK, base(n)['parquet'], tmp/f'spark_{n}', model, tmp/'reports', CAPACITY, a.spark_batches)
        lo = pd.read_parquet(tmp/f'local_{n}.parquet', columns=['customer_id', 'action'])
        by_batch = {}
        for s in sp['lines']:
            sd = pd.read_parquet(tmp/f"spark_{n}_{s['batch']}.parquet", columns=['customer_id', 'action'])
            sd = sd.set_index('customer_id').loc[lo['customer_id']]
            same = bool((sd['action'].astype(str).to_numpy() == lo['action'].astype(str).to_numpy()).all())
            by_batch[str(s['batch'])] = {'rows_per_s': round(n / s['wall_seconds']), 'seconds': round(s['wall_seconds'], 1),
                                         'stages_seconds': s.get('spark_seconds'), 'identical_decisions': same,
                                         'counts': s['counts']}
        udf = run_rss(RUN_SPARK_UDF, model, base(n)['features'], tmp)
        best = max(by_batch.values(), key=lambda r: r['rows_per_s'])
        res['spark'] = {'master': 'local[2]', 'rows': n, 'score_rows_per_s': best['rows_per_s'],
                        'by_arrow_batch': by_batch, 'spark_udf_rows_per_s': round(udf['rows_per_s']),
                        'spark_udf_seconds': round(udf['seconds'], 1), 'local_rows_per_s': loc['rows_per_s'],
                        'identical_decisions': all(r['identical_decisions'] for r in by_batch.values()),
                        'note': 'spark_udf: the pyfunc model (exact pipeline, cloudpickle) probabilities only, '
                                'written to the noop sink; score: probabilities, capacity allocation, decisions, '
                                'Parquet out; Spark start-up (session, first job) outside every timed region; the '
                                'pipeline is broadcast and compiled once per Python worker'}
        print('spark', res['spark'], flush=True)
    for n in sorted(x for x in sizes if x > 1_000_000): local_runs(n)    # 5 M last: the headline figures first
    res['load_average_end'] = os.getloadavg()
    save(); print(f'figures: {portable(out)}')
    plot(res if old is None else merged(old, res), out.with_suffix('.png')); print(f'plot: {portable(out.with_suffix(".png"))}')


if __name__ == '__main__': main()

"""Batch scoring (`bayespilot score`) on the default deployed model, side by side with the deployed pipeline's own
`predict_proba` on the same rows, and on Spark local[2] next to `mlflow.pyfunc.spark_udf` alone.

Every run is its own process, so each peak RSS is that run's (os.wait4). Sizes 100 k, 1 M and 5 M customers (5 M
once), CSV and Parquet input, capacities review=500,escalate=50. Figures: reports/bench/score.json
(score_quick.json with --quick). Usage: python bench/bench_score.py [--quick] [--no-spark] [--no-5m] [--sizes 100000,300000]
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, portable

CAPACITY = 'review=500,escalate=50'

RUN_SCORE = """
import json, sys, time
from bayespilot.config import Settings
from bayespilot.score import score_file
s = score_file(Settings(paths={'reports': sys.argv[4]}), sys.argv[1], sys.argv[2], model=sys.argv[3],
               capacity=sys.argv[5], chunk_rows=100_000, progress=False, track=False)
print(json.dumps(s))
"""

RUN_BASELINE = """
import json, sys, time
import pandas as pd, joblib
pipe = joblib.load(sys.argv[1]); X = pd.read_parquet(sys.argv[2])
t = time.perf_counter(); p = pipe.predict_proba(X)[:, 1]; dt = time.perf_counter() - t
print(json.dumps({'rows': len(X), 'seconds': dt, 'rows_per_s': len(X) / dt}))
"""

RUN_SPARK = """
import json, sys, time
from bayespilot.config import Settings
from bayespilot.spark import score_file_spark, spark_session
spark = spark_session('local[2]')
t = time.perf_counter()
s = score_file_spark(Settings(paths={'reports': sys.argv[4]}), sys.argv[1], sys.argv[2], model=sys.argv[3],
                     capacity=sys.argv[5], progress=False, track=False, spark=spark)
s['wall_seconds'] = time.perf_counter() - t
print(json.dumps(s)); spark.stop()
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
sdf = spark.read.parquet(sys.argv[2])
udf = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type='double', env_manager='local')
t = time.perf_counter()
sdf.withColumn('p', udf(F.struct(*[F.col(c) for c in X.columns]))).write.format('noop').mode('overwrite').save()
dt = time.perf_counter() - t; n = sdf.count()
print(json.dumps({'rows': n, 'seconds': dt, 'rows_per_s': n / dt})); spark.stop()
"""


def run_rss(code: str, *args) -> dict:
    "`run` with the child's own peak RSS, read through os.wait4."
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
    res = json.loads(out.strip().splitlines()[-1])
    res['peak_rss_mib'] = round(usage.ru_maxrss / 1024, 1)
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
    "A synthetic base of `n` customers as CSV and Parquet (the generator's table, as a user's file)."
    from bayespilot.synthetic import generate
    from bayespilot.data import read_table
    csv = tmp/f'base_{n}.csv'
    parts = []
    for i, start in enumerate(range(0, n, 1_000_000)):
        t, _ = generate(min(1_000_000, n - start), seed=100 + i)
        t = t.drop(columns='churned'); t['customer_id'] = t['customer_id'] + f'-{i}'
        t.to_csv(csv, index=False, mode='a' if i else 'w', header=not i)
    df = read_table(csv)
    df.to_parquet(tmp/f'base_{n}.parquet', row_group_size=100_000)
    df.drop(columns=['customer_id', 'clv']).to_parquet(tmp/f'features_{n}.parquet')
    return {'csv': csv, 'parquet': tmp/f'base_{n}.parquet', 'features': tmp/f'features_{n}.parquet'}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='20 k and 100 k rows, no 5 M (a smoke run)')
    ap.add_argument('--no-spark', action='store_true'); ap.add_argument('--no-5m', action='store_true')
    ap.add_argument('--sizes', type=lambda s: [int(float(x)) for x in s.split(',')],
                    help='row counts to run instead, e.g. 100000,300000 (the baseline and Spark use the largest)')
    ap.add_argument('--name', default='score', help='figures file reports/bench/NAME.json (default: score)')
    a = ap.parse_args(argv)
    sizes = a.sizes or ([20_000, 100_000] if a.quick else [100_000, 1_000_000] + ([] if a.no_5m else [5_000_000]))
    main_n = 1_000_000 if 1_000_000 in sizes else sizes[-1]
    tmp = Path(tempfile.mkdtemp(prefix='bench_score_'))
    model = deployed_model(tmp)
    res = {'model': portable(model, tmp), 'capacity': CAPACITY, 'chunk_rows': 100_000, 'cores': os.cpu_count(),
           'runs': []}
    files = {}
    for n in sizes:
        t = time.perf_counter(); files[n] = base_files(n, tmp); print(f'{n:,} rows generated in {time.perf_counter() - t:.0f} s')
        for kind in ('csv', 'parquet'):
            s = run_rss(RUN_SCORE, files[n][kind], tmp/f'out_{n}_{kind}.parquet', model, tmp/'reports', CAPACITY)
            res['runs'].append({'engine': 'local', 'input': kind, 'rows': n, 'seconds': s['seconds'],
                                'rows_per_s': s['rows_per_s'], 'peak_rss_mib': s['peak_rss_mib'],
                                'load_seconds': s['load_seconds'], 'counts': s['counts'],
                                'expected_profit': s['expected_profit']})
            print(res['runs'][-1], flush=True)
    b = run_rss(RUN_BASELINE, model, files[main_n]['features'])
    res['baseline'] = {'what': 'deployed pipeline predict_proba (in memory, probabilities only)', 'rows': main_n,
                       'rows_per_s': round(b['rows_per_s']), 'seconds': round(b['seconds'], 2),
                       'peak_rss_mib': b['peak_rss_mib']}
    local = {r['input']: r for r in res['runs'] if r['rows'] == main_n}
    res['speedup_vs_predict_proba'] = {k: round(r['rows_per_s'] / b['rows_per_s'], 1) for k, r in local.items()}
    print('baseline', res['baseline'], 'speed-up', res['speedup_vs_predict_proba'], flush=True)
    if not a.no_spark:
        n = main_n
        sp = run_rss(RUN_SPARK, files[n]['parquet'], tmp/f'spark_{n}.parquet', model, tmp/'reports', CAPACITY)
        import pandas as pd
        lo = pd.read_parquet(tmp/f'out_{n}_parquet.parquet', columns=['customer_id', 'action'])
        sd = pd.read_parquet(tmp/f'spark_{n}.parquet', columns=['customer_id', 'action']).set_index('customer_id')
        same = bool((sd.loc[lo['customer_id'], 'action'].astype(str).to_numpy() == lo['action'].astype(str).to_numpy()).all())
        udf = run_rss(RUN_SPARK_UDF, model, files[n]['features'], tmp)
        res['spark'] = {'master': 'local[2]', 'rows': n, 'score_rows_per_s': round(n / sp['wall_seconds']),
                        'score_seconds': round(sp['wall_seconds'], 1),
                        'spark_udf_rows_per_s': round(udf['rows_per_s']), 'spark_udf_seconds': round(udf['seconds'], 1),
                        'local_rows_per_s': next(r['rows_per_s'] for r in res['runs']
                                                 if r['rows'] == n and r['input'] == 'parquet'),
                        'identical_decisions': same, 'counts': sp['counts'],
                        'note': 'spark_udf: the pyfunc model (exact pipeline, cloudpickle) probabilities only, '
                                'written to the noop sink; score: probabilities, capacity allocation, decisions, '
                                'Parquet out; both after Spark start-up'}
        print('spark', res['spark'], flush=True)
    out = ROOT/'reports'/'bench'/(f'{a.name}_quick.json' if a.quick else f'{a.name}.json')
    out.write_text(json.dumps(res, indent=2) + '\n'); print(f'figures: {portable(out)}')


if __name__ == '__main__': main()

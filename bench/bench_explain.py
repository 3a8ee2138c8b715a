"""Reason codes where they cost: `bayespilot score` with `--reasons` side by side with `score` without them (same
model, same rows, same run), and the model-explanation report that `train-stage2` writes, timed on a test split the
size of a 100 000-row table's (20 000 rows).

Two models: the default deployed model that `make run` produced (models/artifacts/deployed_pipeline.pkl: the stack
with a 200-tree random forest, whose exact path-dependent TreeSHAP dominates), and the same stack without forests
(logistic regression + the two boosting models, trained here on 20 000 synthetic rows), which shows what the
explainer costs when no deep forest is in the model. Each figure is the median of --repeat runs.
Figures: reports/bench/explain.json (explain_quick.json with --quick).

Usage: python bench/bench_explain.py [--quick] [--repeat 3] [--rows-deployed 100] [--rows-light 10000]
"""
import argparse, json, os, shutil, statistics, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, portable


def light_stack(work: Path) -> Path:
    "The default stack's members without the forests, fitted on 20 000 synthetic rows, saved with a card."
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from bayespilot.artifacts import save_artifact
    from bayespilot.config import DataSettings
    from bayespilot.data import prepare
    from bayespilot.features import make_pipeline
    from bayespilot.stacking import prefit_stack
    from bayespilot.synthetic import generate
    ds = prepare(generate(20_000, seed=42)[0], DataSettings())
    mk = lambda est: make_pipeline(ds.schema, None, est).fit(ds.X, ds.y)
    members = {'logistic_regression': mk(LogisticRegression(max_iter=2000)),
               'gradient_boosting': mk(HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300,
                                                                      max_leaf_nodes=15, random_state=0)),
               'gradient_boosting_defaults': mk(HistGradientBoostingClassifier(random_state=0))}
    stack = prefit_stack(members, [0.40, 0.44, 0.01], 0.05)
    save_artifact(stack, work/'light.pkl', {'name': 'light-stack', 'schema': ds.schema.to_dict()})
    return work/'light.pkl'


def base_file(work: Path, n: int) -> Path:
    "A fresh synthetic customer base of `n` rows as Parquet."
    from bayespilot.data import read_table
    from bayespilot.synthetic import generate
    p, csv = work/f'base_{n}.parquet', work/f'base_{n}.csv'
    if not p.exists():
        generate(n, seed=7)[0].drop(columns='churned').to_csv(csv, index=False)
        read_table(csv).to_parquet(p)               # as the file holds it: blanks and '?' read as missing
    return p


def score_pair(model: Path, data: Path, work: Path, repeat: int) -> dict:
    "rows/s of `score` without and with reasons (top 4), runs taking turns; medians and every run."
    from bayespilot.config import Settings
    from bayespilot.score import score_file
    settings, runs = Settings(paths={'reports': str(work/'reports')}), {'plain': [], 'reasons': []}
    for _ in range(repeat):
        for name, k in (('plain', None), ('reasons', 4)):
            s = score_file(settings, data, work/f'out_{name}.parquet', model=model, overwrite=True, progress=False,
                           track=False, reasons=k)
            runs[name].append({'rows': s['rows'], 'seconds': s['seconds'], 'rows_per_s': s['rows_per_s'],
                               'load_seconds': s['load_seconds']})
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} | {'runs': rs} for n, rs in runs.items()}
    med['reasons_vs_plain_rows_per_s'] = med['reasons']['rows_per_s'] / med['plain']['rows_per_s']
    med['goal_50000_rows_per_s_with_reasons'] = med['reasons']['rows_per_s'] >= 50_000
    return med


def report_time(model: Path, work: Path, repeat: int, n_test: int = 20_000) -> dict:
    "Seconds of the explanation report on an `n_test`-row test split (default sizes), and what it used."
    import numpy as np
    from bayespilot.artifacts import load_artifact
    from bayespilot.config import DataSettings
    from bayespilot.data import prepare
    from bayespilot.explain_report import ExplainSizes, write_explain_report
    from bayespilot.synthetic import generate
    pipe, _ = load_artifact(model)
    ds = prepare(generate(n_test, seed=11)[0], DataSettings())
    acts = np.where(pipe.predict_proba(ds.X)[:, 1] > 0.5, 'escalate', 'monitor')
    runs = []
    for i in range(repeat):
        t = time.perf_counter()
        rep = write_explain_report(work/f'explain_{i}', pipe, ds.X, ds.y, acts)
        runs.append({'seconds': time.perf_counter() - t, 'rows': rep['rows']})
    return {'seconds': statistics.median(r['seconds'] for r in runs), 'sizes': vars(ExplainSizes()), 'runs': runs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='small sizes, one run (a smoke test, not figures)')
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--rows-deployed', type=int, default=100, help='rows scored with the deployed (forest) model')
    ap.add_argument('--rows-light', type=int, default=10_000, help='rows scored with the forest-free stack')
    a = ap.parse_args(argv)
    if a.quick: a.repeat, a.rows_deployed, a.rows_light = 1, 40, 5_000
    work = Path(tempfile.mkdtemp(prefix='bench-explain-'))
    try: return run(a, work)
    finally: shutil.rmtree(work, ignore_errors=True)


def run(a, work: Path) -> int:
    "Every measurement, in `work`; writes the JSON."
    deployed = ROOT/'models'/'artifacts'/'deployed_pipeline.pkl'
    res = {'config': {'repeat': a.repeat, 'cpus': os.cpu_count(), 'load_average_at_start': list(os.getloadavg()),
                      'top_k': 4}, 'score': {}}
    models = {'light_stack': light_stack(work)} | ({'deployed': deployed} if deployed.is_file() else {})
    for name, model in models.items():
        n = a.rows_deployed if name == 'deployed' else a.rows_light
        print(f'-- score {name}: {n:,} rows', flush=True)
        res['score'][name] = {'model': portable(model, work), 'rows': n} | score_pair(model, base_file(work, n), work,
                                                                                      a.repeat)
        print(json.dumps({k: v for k, v in res['score'][name].items() if k in ('reasons_vs_plain_rows_per_s',)}
                         | {k: res['score'][name][k]['rows_per_s'] for k in ('plain', 'reasons')}), flush=True)
    res['report'] = {}
    for name, model in models.items():
        print(f'-- explanation report {name}', flush=True)
        res['report'][name] = report_time(model, work, a.repeat)
        print(json.dumps({'seconds': res['report'][name]['seconds'], 'rows': res['report'][name]['runs'][0]['rows']}))
    res['load_average_at_end'] = list(os.getloadavg())
    out = ROOT/'reports'/'bench'/('explain_quick.json' if a.quick else 'explain.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print(f'figures: {out}')
    return 0


if __name__ == '__main__': sys.exit(main())

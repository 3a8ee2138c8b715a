"""Cost of the prediction log and the metrics registry: µs per write, lines/s in 1 and 4 processes, µs per request.

Writes reports/bench/monitoring.json. Usage: python bench/bench_monitoring.py [--quick]
"""
import argparse, json, multiprocessing as mp, os, platform, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np

from bayespilot.monitoring import PredictionLog, prediction_record, read_log, to_json_line
from bayespilot.worker_metrics import MetricsRegistry
from common import portable

ROOT = Path(__file__).resolve().parent.parent
FEATURES = {'tenure_months': 14, 'contract': 'month-to-month', 'plan': 'standard', 'monthly_charges': 71.35,
            'total_charges': '998.9', 'payment_method': 'electronic check', 'paperless_billing': 'Yes',
            'support_tickets': 2, 'late_payments': 1, 'usage_trend': -0.12, 'days_since_last_login': 9,
            'num_products': 2, 'region': 'north', 'postcode_area': 'PA117'}


def record(i=0, wid=0):
    "A realistic log line (~600 bytes)."
    return prediction_record(request_id=f'{wid}-{i}', customer_id=f'C{i:07d}', model_version=3, model_sha256='ab' * 32,
                             features=FEATURES, churn_probability=0.4172, tier='review', action='review',
                             expected_value=12.5, ev_interval=(3.1, 20.7), latency_ms=1.234, warnings=[])


def best_us(f, n, repeats=3):
    "Best-of-repeats mean µs per call of f()."
    best = float('inf')
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n): f()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def _proc_writer(path, wid, n, max_bytes, start):
    log, recs = PredictionLog(path, max_bytes=max_bytes, backups=1000), [record(i, wid) for i in range(n)]
    start.wait()
    for r in recs: log.write(r)


def multi_process(tmp, n_proc, n, max_bytes):
    "Lines/s of n_proc processes writing n lines each at once (timed from a common start, records pre-built)."
    ctx, path = mp.get_context('fork'), tmp / f'mp{n_proc}-{max_bytes}' / 'p.jsonl'
    start = ctx.Event()
    ps = [ctx.Process(target=_proc_writer, args=(path, w, n, max_bytes, start)) for w in range(n_proc)]
    for p in ps: p.start()
    time.sleep(0.3); t0 = time.perf_counter(); start.set()
    for p in ps: p.join(); assert p.exitcode == 0
    secs = time.perf_counter() - t0
    recs = read_log(path)
    assert len(recs) == n_proc * n and not recs.torn, (len(recs), recs.torn[:1])
    return dict(processes=n_proc, lines=n_proc * n, seconds=round(secs, 3), lines_per_s=round(n_proc * n / secs),
                files=len(recs.files), max_bytes=max_bytes)


def _metrics_worker(directory, n):
    r = MetricsRegistry(directory)
    for i in range(n): r.inc_request('/predict', 200); r.observe_latency('/predict', 0.002); r.inc_tier('review')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__); ap.add_argument('--quick', action='store_true')
    a = ap.parse_args(argv)
    n = 5_000 if a.quick else 50_000
    tmp = Path(tempfile.mkdtemp(prefix='bench-monitoring-'))
    try:
        rec, log = record(), PredictionLog(tmp / 'single' / 'p.jsonl')
        batch = [record(i) for i in range(10)]
        out = dict(line_bytes=len(to_json_line(rec)),
                   encode_us=best_us(lambda: to_json_line(rec), n),
                   prediction_record_us=best_us(record, n),
                   write_us=best_us(lambda: log.write(rec), n),
                   write_many_10_us_per_line=best_us(lambda: log.write_many(batch), n // 10) / 10)
        out['single_process_lines_per_s'] = round(1e6 / out['write_us'])
        out['four_processes'] = multi_process(tmp, 4, n // 2, 50_000_000)
        out['four_processes_rotating'] = multi_process(tmp, 4, n // 2, 2_000_000)
        reg = MetricsRegistry(tmp / 'metrics')
        out['metrics_request_us'] = best_us(lambda: (reg.inc_request('/predict', 200), reg.observe_latency('/predict', 0.002),
                                                     reg.inc_tier('review')), n)
        ctx = mp.get_context('fork')
        ps = [ctx.Process(target=_metrics_worker, args=(tmp / 'metrics', 1000)) for _ in range(3)]
        for p in ps: p.start()
        for p in ps: p.join()
        out['metrics_render_ms_4_processes'] = best_us(reg.render, 200) / 1000
        out = {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}
        out['machine'] = dict(cpus=os.cpu_count(), load_average_1m=round(os.getloadavg()[0], 1),
                              python=platform.python_version(), platform=platform.platform(),
                              filesystem_dir=portable(tmp.parent))   # '<tmp>': the system temp folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dest = ROOT / 'reports' / 'bench' / 'monitoring.json'
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not a.quick:
        prev = json.loads(dest.read_text()) if dest.exists() else {}
        if 'monitor' in prev: out['monitor'] = prev['monitor']        # bench_drift.py's section, kept
        dest.write_text(json.dumps(out, indent=2) + '\n')
    print(json.dumps(out, indent=2))
    return 0


if __name__ == '__main__': sys.exit(main())

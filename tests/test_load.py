"""Proof under load: 4 uvicorn workers, 10 000 concurrent predictions, a tiny rotation size, one complete log line each
on disk (no rotated file deleted); and kill -9 mid-load."""
import json, os, signal, threading, time
from collections import Counter

import httpx

from bayespilot.monitoring import log_files, read_log

from api_fixtures import *  # noqa: F401,F403  (fixtures: fitted, model_dir)
from api_fixtures import example_row, live_server, post_many

N, CONCURRENCY, WORKERS, ROTATE_AT = 10_000, 64, 4, 50_000


def test_ten_thousand_concurrent_predictions_four_workers(model_dir, fitted):
    X = fitted[2]
    log = model_dir/'predictions.jsonl'
    bodies = [example_row(X, i % len(X)) | {'customer_id': f'C{i}'} for i in range(N)]
    tiny = {'BAYESPILOT_SETTINGS_JSON': json.dumps({'serving': {'log_max_bytes': ROTATE_AT}})}
    with live_server(model_dir/'deployed_pipeline.pkl', log, workers=WORKERS, extra_env=tiny) as (base, _):
        t0 = time.perf_counter()
        res = post_many(base, '/predict', bodies, [f'load-{i:05d}' for i in range(N)], CONCURRENCY)
        seconds = time.perf_counter() - t0
        metrics = httpx.get(f'{base}/metrics').text
    bad = [(rid, s, body) for rid, s, body in res if s != 200]
    assert not bad, f'{len(bad)} non-200 responses, e.g. {bad[:3]}'
    assert all(body['client_request_id'] == rid for rid, _, body in res)
    files = log_files(log)
    assert all(f.read_bytes().endswith(b'\n') for f in files), 'every log file ends with a complete line'
    recs = read_log(log)
    assert recs.torn == [] and len(recs) == N, f'{len(recs)} log lines on disk for {N} answered predictions'
    assert len(files) > 50 and all(f.stat().st_size <= ROTATE_AT for f in files), 'it rotated, and no file was lost'
    counts = Counter(r['client_request_id'] for r in recs)
    assert set(counts) == {f'load-{i:05d}' for i in range(N)} and max(counts.values()) == 1
    assert len({r['request_id'] for r in recs}) == N, 'server request ids are unique'
    assert {r['request_id'] for r in recs} == {body['request_id'] for _, _, body in res}
    assert {r['customer_id'] for r in recs} == {f'C{i}' for i in range(N)}
    pids = {r['churn_probability'] for r in recs}
    assert len(pids) > 100  # real, varied predictions
    served = sum(float(l.split()[-1]) for l in metrics.splitlines()
                 if l.startswith('bayespilot_requests_total{endpoint="/predict",status="200"'))
    assert served == N, f'/metrics counts {served} /predict 200s across {WORKERS} workers, expected {N}'
    print(f'\n{N} requests, {WORKERS} workers, concurrency {CONCURRENCY}: {seconds:.1f} s ({N / seconds:.0f} req/s); '
          f'answered {len(res)}, lines on disk {len(recs)}, files {len(files)} (rotated at {ROTATE_AT:,} bytes)')


def test_kill_minus_9_mid_load_leaves_a_clean_log(model_dir, fitted):
    X = fitted[2]
    log = model_dir/'predictions.jsonl'
    bodies = [example_row(X, i % len(X)) for i in range(50_000)]
    with live_server(model_dir/'deployed_pipeline.pkl', log, workers=2) as (base, proc):
        done = threading.Event()
        def load():
            try: post_many(base, '/predict', bodies, [f'k-{i}' for i in range(len(bodies))], 32)
            except Exception: pass  # connections die with the server: expected
            finally: done.set()
        t = threading.Thread(target=load, daemon=True); t.start()
        deadline = time.monotonic() + 60
        while (not log.exists() or log.stat().st_size < 200_000) and time.monotonic() < deadline: time.sleep(0.05)
        before = log.read_bytes()
        before = before[:before.rfind(b'\n') + 1]
        os.killpg(proc.pid, signal.SIGKILL)  # master and workers, mid-write as likely as not
        proc.wait(10)
        t.join(60)
    data = log.read_bytes()
    assert len(before) > 0 and data.startswith(before), 'lines written before the kill are unchanged'
    assert data.endswith(b'\n'), 'no torn final line'
    recs = [json.loads(l) for l in data.split(b'\n')[:-1]]
    assert len(recs) >= before.count(b'\n') and all('churn_probability' in r for r in recs)
    assert len({r['request_id'] for r in recs}) == len(recs)

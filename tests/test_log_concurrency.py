"""Several processes writing one prediction log, and metrics summed across processes.

Real processes (fork), real files: no line lost, torn, interleaved or duplicated, also across rotation and when a
writer is killed with SIGKILL in the middle of a write.
"""
import math, multiprocessing as mp, os, re, signal, time, warnings
from pathlib import Path

import orjson
import pytest

from bayespilot.monitoring import PredictionLog, TornLineWarning, log_files, read_log
from bayespilot.worker_metrics import MetricsRegistry, clear_metrics_dir

CTX = mp.get_context('fork')


def _writer(path, wid, n, max_bytes, backups, pad=40):
    "Write n records {'w': wid, 'i': i}: two thirds one at a time, the rest in batches of 7."
    log = PredictionLog(path, max_bytes=max_bytes, backups=backups)
    k = 2 * n // 3
    for i in range(k): log.write({'w': wid, 'i': i, 'pad': 'x' * pad})
    for s in range(k, n, 7): log.write_many([{'w': wid, 'i': i, 'pad': 'x' * pad} for i in range(s, min(s + 7, n))])
    log.close()


def _start(target, *args):
    p = CTX.Process(target=target, args=args); p.start(); return p


def _join(procs, timeout=60):
    for p in procs:
        p.join(timeout)
        assert p.exitcode == 0, f"process {p.pid} exit code {p.exitcode}"


def _physical_lines(path):
    "Every line of every log file, as bytes, in write order."
    return [l for f in log_files(path) for l in Path(f).read_bytes().splitlines()]


def test_eight_processes_with_rotation_lose_nothing(tmp_path):
    path, n_proc, n, max_bytes = tmp_path / 'logs' / 'predictions.jsonl', 8, 5_000, 250_000
    _join([_start(_writer, path, w, n, max_bytes, 1_000) for w in range(n_proc)])
    recs = read_log(path)
    assert recs.torn == []
    assert len(recs) == n_proc * n
    assert len({(r['w'], r['i']) for r in recs}) == n_proc * n            # none duplicated
    for w in range(n_proc):                                                # none lost, each writer's order kept
        assert [r['i'] for r in recs if r['w'] == w] == list(range(n))
    files = log_files(path)
    assert len(files) >= 10                                                # it really rotated
    assert all(f.stat().st_size <= max_bytes for f in files)               # rotation happened under the lock
    assert all(orjson.loads(l)['pad'] == 'x' * 40 for l in _physical_lines(path))


def _default_writer(path, wid, n, max_bytes):
    "Write n records with the default retention (none chosen): nothing may be deleted."
    log = PredictionLog(path, max_bytes=max_bytes)
    for i in range(n): log.write({'w': wid, 'i': i, 'pad': 'x' * 40})
    log.close()


def test_default_retention_keeps_every_rotated_file(tmp_path):
    "Without an operator-chosen retention, rotation deletes nothing: 4 writers, a tiny size, every line on disk."
    path, n_proc, n, max_bytes = tmp_path / 'p.jsonl', 4, 3_000, 5_000
    _join([_start(_default_writer, path, w, n, max_bytes) for w in range(n_proc)])
    recs = read_log(path)
    assert recs.torn == [] and len(recs) == n_proc * n
    for w in range(n_proc): assert [r['i'] for r in recs if r['w'] == w] == list(range(n))
    nums = [int(f.name.rsplit('.', 1)[1]) for f in log_files(path)[:-1]]
    assert len(nums) > 100 and nums == list(range(1, len(nums) + 1))   # backups numbered oldest first, none missing


def _big_writer(path, written):
    "Write 4 MB records forever (big writes are the ones a kill can cut short), counting the writes that returned."
    log, blob, i = PredictionLog(path, max_bytes=10**9), 'y' * 4_000_000, 0
    while True:
        log.write({'w': 'big', 'i': i, 'blob': blob})
        i += 1; written.value = i


def test_sigkill_mid_write_damages_nothing_before_or_after(tmp_path):
    path = tmp_path / 'predictions.jsonl'
    written = CTX.Value('i', 0)
    big = _start(_big_writer, path, written)
    small = [_start(_writer, path, w, 3_000, 10**9, 5) for w in range(2)]
    deadline = time.time() + 10
    while written.value < 5 and time.time() < deadline: time.sleep(0.005)
    time.sleep(0.013)
    os.kill(big.pid, signal.SIGKILL); big.join(10)
    assert big.exitcode == -signal.SIGKILL
    _join(small)                                            # the killed writer's flock did not stay held
    n_big = written.value
    PredictionLog(path).write({'w': 'after', 'i': 0})       # a write after the crash is intact
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        recs = read_log(path)
    assert [w.category for w in caught] == ([TornLineWarning] if recs.torn else [])   # reported, never raised
    assert len(recs.torn) <= 1                              # at most the one write interrupted by the kill
    for _, _, head in recs.torn: assert head.startswith(b'{"w":"big"')
    bigs = [r['i'] for r in recs if r['w'] == 'big']
    assert bigs[:n_big] == list(range(n_big))               # every write that returned is there, complete
    assert len(bigs) in (n_big, n_big + 1)                  # plus possibly the one in flight, if it completed
    for w in range(2): assert [r['i'] for r in recs if r['w'] == w] == list(range(3_000))
    assert recs[-1] == {'w': 'after', 'i': 0}
    assert all(len(r) == 3 for r in recs if r['w'] != 'after')   # no line mixes two records


def _reader(path, n_rounds, errors):
    "Read the log repeatedly while it is written and rotated; each snapshot must be a consistent prefix."
    for _ in range(n_rounds):
        recs = read_log(path)
        if recs.torn: errors.put(f"torn lines: {recs.torn[:2]}"); return
        seen = {}
        for r in recs: seen.setdefault(r['w'], []).append(r['i'])
        for w, ids in seen.items():
            if ids != list(range(len(ids))): errors.put(f"writer {w}: snapshot ids not a prefix: {ids[:10]}..."); return
    errors.put(None)


def test_rotation_race_with_concurrent_reader(tmp_path):
    "Tiny files force hundreds of rotations while six writers append and a reader snapshots the files."
    path, n_proc, n, max_bytes = tmp_path / 'p.jsonl', 6, 1_500, 2_000
    errors = CTX.Queue()
    for f in (path, tmp_path / 'p.jsonl.lock'): f.write_bytes(b'')   # so the reader has a log (and lock) from the start
    procs = [_start(_writer, path, w, n, max_bytes, 100_000, 10) for w in range(n_proc)]
    reader = _start(_reader, path, 30, errors)
    _join(procs + [reader], timeout=120)
    assert errors.get(timeout=5) is None
    recs = read_log(path)
    assert len(recs) == n_proc * n and recs.torn == []
    for w in range(n_proc): assert [r['i'] for r in recs if r['w'] == w] == list(range(n))
    files = log_files(path)
    assert len(files) > 100 and all(f.stat().st_size <= max_bytes for f in files)
    numbers = sorted(int(re.search(r'\.(\d+)$', f.name)[1]) for f in files[:-1])
    assert numbers == list(range(1, len(files)))            # no gap: no rotated file was overwritten or lost


def test_retention_drops_only_the_oldest_lines(tmp_path):
    "With few backups old lines go, but what is kept is a contiguous, newest part of every writer's sequence."
    path, n = tmp_path / 'p.jsonl', 2_000
    _join([_start(_writer, path, w, n, 20_000, 3) for w in range(3)])
    recs = read_log(path)
    assert len(log_files(path)) == 4 and 0 < len(recs) < 3 * n
    for w in range(3):
        ids = [r['i'] for r in recs if r['w'] == w]
        assert ids == list(range(n - len(ids), n))


def test_writer_follows_rotation_by_another_process(tmp_path):
    path = tmp_path / 'p.jsonl'
    stale = PredictionLog(path, max_bytes=10**6)
    stale.write({'i': 0})                                           # opens the file, then another process rotates
    _join([_start(_write_one, path, 100, {'i': 'other', 'pad': 'x' * 100})])   # 8 + 120 bytes > 100: rotates
    assert [f.name for f in log_files(path)] == ['p.jsonl.1', 'p.jsonl']
    stale.write({'i': 1})
    assert stale.rotations == 0
    assert [orjson.loads(l)['i'] for l in path.read_bytes().splitlines()] == ['other', 1]   # new file, not the backup
    assert [r['i'] for r in read_log(path)] == [0, 'other', 1]


def _write_one(path, max_bytes, record):
    PredictionLog(path, max_bytes=max_bytes).write(record)


def _die_mid_write(path):
    "Take the log's lock, write half a record, and die by SIGKILL while holding the lock."
    import fcntl
    log = PredictionLog(path); log.write({'w': 'dying', 'i': 0})
    lock = os.open(f'{path}.lock', os.O_RDWR); fcntl.flock(lock, fcntl.LOCK_EX)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND); os.write(fd, b'{"w":"dying","i":1,"half')
    os.kill(os.getpid(), signal.SIGKILL)


def test_writer_killed_holding_the_lock_with_half_a_line(tmp_path):
    "The deterministic version of a kill mid-write: the lock is freed, the torn tail is fenced off and reported."
    path = tmp_path / 'p.jsonl'
    p = _start(_die_mid_write, path); p.join(10)
    assert p.exitcode == -signal.SIGKILL
    _join([_start(_writer, path, w, 200, 10**9, 5) for w in range(2)], timeout=10)   # would hang if the lock stayed held
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        recs = read_log(path)
    assert [w.category for w in caught] == [TornLineWarning]
    assert recs.torn == [(str(path), 2, b'{"w":"dying","i":1,"half')]
    assert recs[0] == {'w': 'dying', 'i': 0}
    for w in range(2): assert [r['i'] for r in recs if r['w'] == w] == list(range(200))   # nothing swallowed


# --- metrics ---------------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prometheus(text):
    "A strict little parser for text format 0.0.4: {(name, labels): value}, checking HELP/TYPE come first."
    assert text.endswith('\n')
    typed, samples = {}, {}
    for line in text.splitlines():
        if line.startswith('# HELP '): continue
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' '); assert kind in ('counter', 'gauge', 'histogram'); typed[name] = kind
            continue
        m = _SAMPLE.match(line); assert m, f"bad sample line {line!r}"
        name, labels = m[1], ()
        if m[3]:
            pairs = _LABEL.findall(m[3]); assert ','.join(f'{k}="{v}"' for k, v, _ in pairs) == m[3], line
            labels = tuple((k, v) for k, v, _ in pairs)
        base = re.sub(r'_(bucket|sum|count)$', '', name)
        assert name in typed or (base in typed and typed[base] == 'histogram'), f"{name} has no TYPE line before it"
        samples[(name, labels)] = float(m[4].replace('+Inf', 'inf'))
    return samples


def _count(directory, wid, n, done, go):
    "One fake worker: n requests, latencies and tiers; then it says so and stays alive until `go`."
    reg = MetricsRegistry()                          # from BAYESPILOT_METRICS_DIR, as a uvicorn worker would
    assert reg.directory == Path(directory)
    for i in range(n):
        reg.inc_request('/predict', 200 if i % 10 else 422)
        reg.observe_latency('/predict', (i % 50) / 1000)   # 0 .. 49 ms
        reg.inc_tier(('monitor', 'review', 'escalate')[i % 3])
    done.release()
    go.wait(300)


def test_metrics_sum_over_worker_processes(tmp_path, monkeypatch):
    d = tmp_path / 'metrics'
    monkeypatch.setenv('BAYESPILOT_METRICS_DIR', str(d))
    go, done, ns = CTX.Event(), CTX.Semaphore(0), [3_000, 1_500, 900, 600]
    procs = [_start(_count, d, w, n, done, go) for w, n in enumerate(ns)]
    for _ in ns: assert done.acquire(timeout=300), "a worker did not finish counting"   # no clock: waits for the work
    text = MetricsRegistry().render()                  # workers are alive and idle: exact totals, no flush needed
    go.set(); _join(procs)
    s, total = parse_prometheus(text), sum(ns)
    ep = ('endpoint', '/predict')
    assert s[('bayespilot_requests_total', (ep, ('status', '422')))] == sum(n // 10 for n in ns)
    assert s[('bayespilot_requests_total', (ep, ('status', '200')))] == total - sum(n // 10 for n in ns)
    assert s[('bayespilot_metrics_processes', ())] == 4
    assert sum(v for (k, l), v in s.items() if k == 'bayespilot_predictions_total') == total
    buckets = sorted(((float(dict(l)['le'].replace('+Inf', 'inf')), v) for (k, l), v in s.items()
                      if k == 'bayespilot_request_latency_seconds_bucket'))
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)          # cumulative
    assert buckets[-1] == (math.inf, total) and s[('bayespilot_request_latency_seconds_count', (ep,))] == total
    le10 = dict(buckets)[0.01]                                              # latencies 0..10 ms inclusive
    assert le10 == sum(sum(1 for i in range(n) if i % 50 <= 10) for n in ns)
    expected_sum = sum(sum((i % 50) / 1000 for i in range(n)) for n in ns)
    assert s[('bayespilot_request_latency_seconds_sum', (ep,))] == pytest.approx(expected_sum, rel=1e-9)
    assert clear_metrics_dir(d) == 4


def test_render_parses_with_prometheus_client(tmp_path):
    parser = pytest.importorskip('prometheus_client.parser')
    reg = MetricsRegistry(tmp_path)
    reg.inc_request('/predict/batch', 200); reg.observe_latency('/predict/batch', 0.3); reg.inc_tier('escalate', 5)
    reg.inc_request('/we"ird\\path', 404)
    fams = {f.name: f for f in parser.text_string_to_metric_families(reg.render())}
    assert fams['bayespilot_request_latency_seconds'].type == 'histogram'
    assert {s.labels['endpoint'] for s in fams['bayespilot_requests'].samples} == {'/predict/batch', '/we"ird\\path'}
    hist = {(s.name, s.labels.get('le')): s.value for s in fams['bayespilot_request_latency_seconds'].samples}
    assert hist[('bayespilot_request_latency_seconds_bucket', '0.25')] == 0
    assert hist[('bayespilot_request_latency_seconds_bucket', '0.5')] == 1
    assert hist[('bayespilot_request_latency_seconds_count', None)] == 1
    assert [s.value for s in fams['bayespilot_predictions'].samples] == [5]


# --- real uvicorn workers (spawned, not forked) -----------------------------------------------------------------

_APP = '''
import os, time, uuid
from fastapi import FastAPI, Response
from bayespilot.monitoring import PredictionLog, prediction_record
from bayespilot.worker_metrics import CONTENT_TYPE, MetricsRegistry
app = FastAPI()
log, reg = PredictionLog(os.environ['TEST_LOG_PATH'], max_bytes=100_000, backups=1000), MetricsRegistry()

@app.get('/predict/{i}')
def predict(i: int):
    t0 = time.perf_counter()
    tier = ('monitor', 'review', 'escalate')[i % 3]
    log.write(prediction_record(request_id=str(i), customer_id=f'C{i}', features={'x': i, 'pid': os.getpid()},
                                churn_probability=0.5, tier=tier, action=tier, latency_ms=0.1))
    reg.inc_tier(tier); reg.inc_request('/predict', 200); reg.observe_latency('/predict', time.perf_counter() - t0)
    return {'i': i}

@app.get('/metrics')
def metrics(): return Response(reg.render(), media_type=CONTENT_TYPE)

@app.get('/pid')
def pid(): return os.getpid()
'''


def test_uvicorn_workers_share_log_and_metrics(tmp_path):
    import socket, subprocess, sys, threading
    from concurrent.futures import ThreadPoolExecutor
    httpx = pytest.importorskip('httpx')
    (tmp_path / 'tinyapp.py').write_text(_APP)
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    env = {**os.environ, 'TEST_LOG_PATH': str(tmp_path / 'logs' / 'predictions.jsonl'),
           'BAYESPILOT_METRICS_DIR': str(tmp_path / 'metrics'), 'PYTHONPATH': str(tmp_path)}
    server = subprocess.Popen([sys.executable, '-m', 'uvicorn', 'tinyapp:app', '--workers', '4', '--port', str(port),
                               '--log-level', 'warning'], env=env, cwd=tmp_path)
    base, n = f'http://127.0.0.1:{port}', 2_000
    try:
        with httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as c:  # new connection per request, so the workers share them
            pids, deadline = set(), time.monotonic() + 180   # generous: a loaded machine starts workers slowly
            while len(pids) < 4 and time.monotonic() < deadline:  # all four workers up before the load starts
                try: pids.add(c.get('/pid').json())
                except httpx.TransportError: time.sleep(0.1)
            assert len(pids) == 4, f"only {len(pids)} of 4 uvicorn workers answered within 180 s"
            local, clients = threading.local(), []
            def get(i):
                "One httpx client per thread: a sync client's connection pool is not safe to share between threads."
                if not hasattr(local, 'c'):
                    local.c = httpx.Client(base_url=base, timeout=10, limits=httpx.Limits(max_keepalive_connections=0))
                    clients.append(local.c)
                return local.c.get(f'/predict/{i}').status_code
            try:
                with ThreadPoolExecutor(8) as ex: codes = list(ex.map(get, range(n)))
            finally:
                for cl in clients: cl.close()
            assert codes == [200] * n
            scrapes = [parse_prometheus(c.get('/metrics').text) for _ in range(12)]   # answered by various workers
    finally:
        server.terminate(); server.wait(20)
    recs = read_log(tmp_path / 'logs' / 'predictions.jsonl')
    assert recs.torn == [] and sorted(int(r['request_id']) for r in recs) == list(range(n))
    assert len({r['features']['pid'] for r in recs}) > 1                  # several workers really wrote
    for s in scrapes:
        assert s[('bayespilot_requests_total', (('endpoint', '/predict'), ('status', '200')))] == n
        assert s[('bayespilot_request_latency_seconds_count', (('endpoint', '/predict'),))] == n
        assert s[('bayespilot_predictions_total', (('tier', 'review'),))] == sum(1 for i in range(n) if i % 3 == 1)
        assert s[('bayespilot_metrics_processes', ())] == len({r['features']['pid'] for r in recs})

"""Serving benchmark: BayesPilot /predict vs `mlflow models serve` of the same registered model vs a trivial FastAPI
endpoint (the HTTP floor). Same machine, loopback, one server worker each, servers run one at a time.

- sequential client (one keep-alive connection): per-request latency p50 / p99;
- concurrent client (`--concurrency` keep-alive connections sending back to back): requests per second;
  both use a minimal raw-asyncio HTTP/1.1 client so that the client, which shares the machine, costs little.
- BayesPilot /predict/batch: rows per second for batches of 1000.
- BayesPilot /predict?explain=true&top_k=4 (reason codes) side by side with /predict on the same server, the two
  taking turns within every run (p50/p99, requests/s, batch rows/s): the goal is p50 at most 1 ms above.
Each figure is the median of `--runs` runs. Figures go to reports/bench/serving.json and serving.png.
- `--only-explain`: only the BayesPilot server, /predict against /predict?explain=true (the same requests, the two
  taking turns within every run), on the default deployed model -> reports/bench/serving_explain.json and .png.

The model: the deployed artifact and its registered version (`models/artifacts/deployed_pipeline.pkl`, whose card
names `registered_model`, and the MLflow store of the default settings) when `make run` has produced them;
otherwise a small logistic-regression pipeline is trained, saved with a card and registered in a scratch MLflow
store, so the benchmark always compares the same model in both servers.

Usage: python bench/bench_serving.py [--quick] [--only-explain] [--runs 3] [--sequential 1000] [--concurrent 2000]
                                     [--concurrency 32]
"""
import argparse, asyncio, json, os, platform, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

import httpx
import numpy as np

from common import portable

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT/'reports'/'bench'
PY = sys.executable
MLFLOW = str(Path(PY).with_name('mlflow'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


class Server:
    "A server subprocess in its own process group; waits until `ready_path` answers, always killed on exit."
    def __init__(self, name, cmd, env, ready_path, port, workdir, timeout=180, logdir=None):
        self.name, self.cmd, self.env, self.ready_path, self.port, self.workdir, self.timeout = name, cmd, env, ready_path, port, workdir, timeout
        self.logdir = logdir or workdir    # the server's output goes here (never into the project folder it may run in)
        self.base = f'http://127.0.0.1:{port}'

    def __enter__(self):
        self.out = open(Path(self.logdir)/f'{self.name}.out', 'wb')
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None: raise RuntimeError(f'{self.name} exited: {Path(self.out.name).read_text()[-3000:]}')
            try:
                if httpx.get(self.base + self.ready_path, timeout=2).status_code == 200: return self
            except httpx.TransportError: pass
            if time.monotonic() > deadline: raise RuntimeError(f'{self.name} not ready after {self.timeout} s')
            time.sleep(0.2)

    def __exit__(self, *exc):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try: os.killpg(self.proc.pid, sig)
            except ProcessLookupError: break
            try: self.proc.wait(10); break
            except subprocess.TimeoutExpired: continue
        self.out.close()


def _raw_requests(port: int, path: str, bodies: list[bytes]) -> list[bytes]:
    "Complete HTTP/1.1 keep-alive POST requests as bytes (built before timing)."
    head = f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: '
    return [head.encode() + str(len(b)).encode() + b'\r\n\r\n' + b for b in bodies]


async def _exchange(reader, writer, req: bytes) -> int:
    "Send one request, read one complete response (Content-Length framed); returns the status code."
    writer.write(req)
    head = await reader.readuntil(b'\r\n\r\n')
    cl = re.search(rb'(?i)\r\ncontent-length:\s*(\d+)', head)
    if cl is None: raise RuntimeError(f'response without Content-Length: {head[:200]!r}')
    await reader.readexactly(int(cl.group(1)))
    return int(head[9:12])


async def _connections(port, n):
    return [await asyncio.open_connection('127.0.0.1', port) for _ in range(n)]


async def _sequential(port, reqs, warmup):
    (reader, writer), = await _connections(port, 1)
    lat, bad = [], 0
    for i, req in enumerate([*reqs[:warmup], *reqs]):
        t = time.perf_counter()
        bad += await _exchange(reader, writer, req) != 200
        if i >= warmup: lat.append((time.perf_counter() - t) * 1000)
    writer.close()
    return lat, bad


def sequential(port, path, bodies, warmup=100) -> dict:
    "Per-request latency (ms): one keep-alive connection, one request at a time, a minimal raw HTTP client."
    lat, errors = asyncio.run(_sequential(port, _raw_requests(port, path, bodies), warmup))
    return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)), 'errors': errors, 'n': len(lat)}


async def _concurrent(port, reqs, concurrency) -> float:
    conns, it, bad, reopened = [list(c) for c in await _connections(port, concurrency)], iter(reqs), [0], [0]
    async def loop(conn, items):
        for req in items:
            try: bad[0] += await _exchange(*conn, req) != 200
            except (asyncio.IncompleteReadError, ConnectionError):  # the server closed an idle keep-alive connection:
                conn[1].close(); conn[:] = await asyncio.open_connection('127.0.0.1', port); reopened[0] += 1  # reopen, resend
                bad[0] += await _exchange(*conn, req) != 200
    await asyncio.gather(*(loop(c, reqs[:2]) for c in conns))  # warm every connection
    t = time.perf_counter()
    await asyncio.gather(*(loop(c, it) for c in conns))  # connections share one iterator of requests
    dt = time.perf_counter() - t
    for _, w in conns: w.close()
    return (len(reqs) - bad[0]) / dt, bad[0], reopened[0]


def concurrent(port, path, bodies, concurrency) -> dict:
    "Successful requests per second with `concurrency` keep-alive connections sending back to back; errors counted."
    rate, errors, reopened = asyncio.run(_concurrent(port, _raw_requests(port, path, bodies), concurrency))
    return {'requests_per_s': rate, 'errors': errors, 'n': len(bodies), 'concurrency': concurrency, 'reopened_connections': reopened}


def median_runs(fn, runs) -> dict:
    "Run `fn()` `runs` times; the median of every numeric figure, and all runs."
    res = [fn() for _ in range(runs)]
    return {k: statistics.median(r[k] for r in res) for k in res[0]} | {'runs': res}


def medians(res: list[dict]) -> dict:
    "The median of every figure over runs, and all runs."
    return {k: statistics.median(r[k] for r in res) for k in res[0]} | {'runs': res}


def paired_runs(port, paths: dict, bodies, a, fractions: dict) -> dict:
    """Sequential and concurrent figures for each of `paths` on one server, the paths taking turns within every run
    (so that a change of machine load hits both alike), each path with its share `fractions[name]` of the requests
    (at least 10); {name: {'sequential': medians, 'concurrent': medians}}."""
    seq, con = {n: [] for n in paths}, {n: [] for n in paths}
    size = lambda n, total: max(10, int(total * fractions.get(n, 1.0)))
    for _ in range(a.runs):
        for n, p in paths.items():
            seq[n].append(sequential(port, p, bodies[:size(n, a.sequential)], warmup=min(100, size(n, a.sequential))))
        for n, p in paths.items(): con[n].append(concurrent(port, p, bodies[:size(n, a.concurrent)], a.concurrency))
    return {n: {'sequential': medians(seq[n]), 'concurrent': medians(con[n])} for n in paths}


FLOOR_APP = textwrap.dedent('''
    from fastapi import FastAPI, Request
    app = FastAPI()
    @app.post('/predict')
    async def predict(request: Request):
        body = await request.json()
        return {'n_fields': len(body), 'churn_probability': 0.5}
    @app.get('/health')
    async def health(): return {'status': 'ok'}
''')


def sealed_copy(art: Path, work: Path) -> tuple:
    """(artifact, card) to serve: `art` itself when its card is sealed, else a copy in `work` whose card is sealed
    anew (a card written before cards were sealed), once the pkl's sha256 still matches that card."""
    from bayespilot.artifacts import IntegrityError, read_card, write_card
    from bayespilot.config import sha256_file
    try: return art, read_card(art)
    except IntegrityError: pass
    old = json.loads(art.with_suffix('.json').read_text())
    if sha256_file(art) != old.get('sha256'): raise IntegrityError(f'{art} does not match its card')
    copy = work/art.name
    shutil.copyfile(art, copy)
    return copy, write_card(copy, old)


def prepare_model(work: Path, quick: bool, model=None, tracking_uri=None) -> dict:
    "The artifact and registered model to serve: the deployed ones when present, else a scratch one."
    from bayespilot.artifacts import read_card
    from bayespilot.config import Settings
    s = Settings()
    art = Path(model) if model else ROOT/s.serving.model_path
    if art.is_file():
        art, card = sealed_copy(art, work)
        reg = card.get('registered_model') or {}
        if reg.get('name'):
            return {'artifact': art, 'tracking_uri': tracking_uri or (s.tracking.resolved_uri() if s.tracking.uri or 'MLFLOW_TRACKING_URI' in os.environ
                    else f'sqlite:///{ROOT/"mlflow.db"}'), 'model_uri': f"models:/{reg['name']}@{reg.get('alias', 'champion')}",
                    'source': 'deployed', 'card_name': card.get('name'), 'cwd': ROOT}
    return scratch_model(work, quick)


def scratch_model(work: Path, quick: bool) -> dict:
    "Train a small LR pipeline, save it with a card and register it as bayespilot-churn@champion in a scratch store."
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from bayespilot.artifacts import save_artifact
    from bayespilot.config import DataSettings, FeatureSettings, TrackingSettings
    from bayespilot.data import prepare
    from bayespilot.features import make_pipeline
    from bayespilot.synthetic import generate
    from bayespilot.tracking import log_model, register, setup_mlflow
    table, _ = generate(3000 if quick else 20000, seed=42)
    ds = prepare(table, DataSettings())
    pipe = make_pipeline(ds.schema, FeatureSettings(), LogisticRegression(max_iter=2000)).fit(ds.X, ds.y)
    uri = f'sqlite:///{work/"mlflow.db"}'
    setup_mlflow(TrackingSettings(uri=uri, experiment='bench-serving', artifact_location=work/'mlartifacts'))
    with mlflow.start_run():
        info = log_model(pipe, ds.X, name='model')
    version = register(info.model_uri, 'bayespilot-churn', 'champion')
    save_artifact(pipe, work/'deployed_pipeline.pkl', {'name': 'bench-lr', 'schema': ds.schema.to_dict(),
                  'registered_model': {'name': 'bayespilot-churn', 'version': version, 'alias': 'champion'}})
    return {'artifact': work/'deployed_pipeline.pkl', 'tracking_uri': uri, 'model_uri': 'models:/bayespilot-churn@champion',
            'source': 'scratch (logistic regression, synthetic table)', 'card_name': 'bench-lr', 'cwd': work}


def request_rows(artifact: Path, n: int) -> list[dict]:
    "Realistic request bodies: complete rows of a freshly generated synthetic table, the model's features only."
    from bayespilot.artifacts import read_card
    from bayespilot.synthetic import generate
    schema = read_card(artifact)['schema']
    feats = schema['numeric'] + schema['categorical']
    table, _ = generate(2 * n, seed=7)
    rows = []
    for rec in table.to_dict('records'):
        row = {}
        for k in feats:
            v = rec.get(k)
            if v is None or (isinstance(v, float) and v != v): continue
            if k in schema['numeric']:
                try: v = float(v)
                except ValueError: continue
                if v != v: continue
            row[k] = v if k in schema['numeric'] else str(v)
        if len(row) == len(feats): rows.append(row)  # complete rows: MLflow's signature requires every column
    return rows[:n]


def plot(res: dict, path: Path):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = [n for n in ('floor', 'bayespilot', 'bayespilot_explain', 'mlflow') if n in res['servers']]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    x = np.arange(len(names))
    ax[0].bar(x - 0.2, [res['servers'][n]['sequential']['p50_ms'] for n in names], 0.4, label='p50')
    ax[0].bar(x + 0.2, [res['servers'][n]['sequential']['p99_ms'] for n in names], 0.4, label='p99')
    labels = [n.replace('bayespilot_explain', 'explain=true') for n in names]
    ax[0].set_xticks(x, labels); ax[0].set_ylabel('ms per request (sequential client)'); ax[0].legend(); ax[0].set_yscale('log')
    ax[1].bar(x, [res['servers'][n]['concurrent']['requests_per_s'] for n in names], color='tab:green')
    ax[1].set_xticks(x, labels); ax[1].set_ylabel(f"requests/s (concurrency {res['config']['concurrency']})")
    fig.suptitle('Single-row scoring over HTTP, one worker, loopback'); fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='small sizes, one run (a smoke test, not figures)')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--sequential', type=int, default=1000)
    ap.add_argument('--concurrent', type=int, default=2000)
    ap.add_argument('--concurrency', type=int, default=32)
    ap.add_argument('--mlflow-fraction', type=float, default=0.3, help='mlflow serve gets this share of the requests (it is slow)')
    ap.add_argument('--skip-mlflow', action='store_true')
    ap.add_argument('--model', help='artifact to serve (default: serving.model_path when it exists, else a scratch model)')
    ap.add_argument('--tracking-uri', help='MLflow store holding the registered model named in the card')
    ap.add_argument('--top-k', type=int, default=4, help='reasons per explained prediction (default 4)')
    ap.add_argument('--explain-fraction', type=float, default=None, help='/predict?explain=true gets this share of the '
                    'requests (default 0.05, 1 with --only-explain)')
    ap.add_argument('--only-explain', action='store_true', help='only /predict vs /predict?explain=true on BayesPilot')
    a = ap.parse_args(argv)
    if a.explain_fraction is None: a.explain_fraction = 1.0 if a.only_explain else 0.05
    if a.only_explain: a.skip_mlflow = True
    if a.quick: a.runs, a.sequential, a.concurrent = 1, 200, 400
    work = Path(tempfile.mkdtemp(prefix='bench-serving-'))
    try:
        m = prepare_model(work, a.quick, a.model, a.tracking_uri)
        rows = request_rows(m['artifact'], max(a.sequential, a.concurrent, 1000))
        bodies = [json.dumps(r).encode() for r in rows]
        mlflow_bodies = [json.dumps({'dataframe_records': [r]}).encode() for r in rows]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith('BAYESPILOT_')} | {'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
        (work/'floor_app.py').write_text(FLOOR_APP)
        uv = lambda app, port, extra=(): [PY, '-m', 'uvicorn', app, '--host', '127.0.0.1', '--port', str(port), '--workers', '1',
                                          '--log-level', 'warning', '--no-access-log', *extra]
        servers = {
            'floor': (uv('floor_app:app', p := free_port(), ['--app-dir', str(work)]), base_env, '/health', p, '/predict', bodies),
            'bayespilot': (uv('bayespilot.api:create_app', p := free_port(), ['--factory']),   # app factory, as `serve` runs it
                           base_env | {'BAYESPILOT_MODEL_PATH': str(m['artifact']),
                           'BAYESPILOT_LOG_PATH': str(work/'predictions.jsonl'), 'BAYESPILOT_METRICS_DIR': tempfile.mkdtemp(dir=work)},
                           '/ready', p, '/predict', bodies)}
        if a.only_explain: servers.pop('floor')
        if not a.skip_mlflow:
            servers['mlflow'] = ([MLFLOW, 'models', 'serve', '-m', m['model_uri'], '--env-manager', 'local', '-h', '127.0.0.1',
                                  '-p', str(p := free_port()), '-w', '1'], base_env | {'MLFLOW_TRACKING_URI': m['tracking_uri'], 'PATH': f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
                                 '/ping', p, '/invocations', mlflow_bodies)
        res = {'config': {'runs': a.runs, 'sequential_requests': a.sequential, 'concurrent_requests': a.concurrent,
                          'explain_fraction': a.explain_fraction, 'only_explain': a.only_explain, 'top_k': a.top_k,
                          'concurrency': a.concurrency, 'model_source': m['source'], 'model_uri': m['model_uri'],
                          'artifact': portable(m['artifact'], work), 'cpus': os.cpu_count(), 'python': platform.python_version(),
                          'load_average_at_start': list(os.getloadavg())},
               'servers': {}}
        for name, (cmd, env, ready, port, path, bs) in servers.items():
            print(f'-- {name}', flush=True)
            with Server(name, cmd, env, ready, port, work if name != 'mlflow' else m['cwd'], logdir=work) as srv:
                f = a.mlflow_fraction if name == 'mlflow' else 1.0
                if name == 'bayespilot':    # /predict and /predict?explain=true on the same server, runs interleaved
                    paths = {'bayespilot': path, 'bayespilot_explain': f'{path}?explain=true&top_k={a.top_k}'}
                    res['servers'] |= paired_runs(port, paths, bs, a, {'bayespilot_explain': a.explain_fraction})
                    print(json.dumps({k: v for k, v in res['servers']['bayespilot_explain']['sequential'].items()
                                      if k != 'runs'}), '(explain)', flush=True)
                else:
                    seq = median_runs(lambda: sequential(port, path, bs[:int(a.sequential * f)]), a.runs)
                    con = median_runs(lambda: concurrent(port, path, bs[:int(a.concurrent * f)], a.concurrency), a.runs)
                    res['servers'][name] = {'sequential': seq, 'concurrent': con}
                if name == 'bayespilot':
                    info = httpx.get(srv.base + '/model').json()
                    res['servers'][name]['fast_path'] = info['fast_path']; res['servers'][name]['fast_path_reason'] = info['fast_path_reason']
                    batch = json.dumps({'customers': rows[:1000]}).encode()
                    def batch_run(route='/predict/batch', n=1000):
                        ts, body = [], batch if n == 1000 else json.dumps({'customers': rows[:n]}).encode()
                        with httpx.Client(base_url=srv.base, timeout=600) as c:
                            for _ in range(3 if a.quick or n < 1000 else 10):
                                t = time.perf_counter(); c.post(route, content=body, headers={'content-type': 'application/json'}).raise_for_status()
                                ts.append(time.perf_counter() - t)
                        return {'rows_per_s': n / float(np.median(ts)), 'batch_ms_p50': float(np.median(ts) * 1000), 'rows': n}
                    res['servers'][name]['batch_1000'] = median_runs(batch_run, a.runs)
                    res['servers']['bayespilot_explain']['batch_1000'] = median_runs(   # explained: 100 rows
                        lambda: batch_run(f'/predict/batch?explain=true&top_k={a.top_k}', 100), a.runs)
                    probe = httpx.post(srv.base + paths['bayespilot_explain'], content=bodies[0],
                                       headers={'content-type': 'application/json'}).json()
                    res['servers']['bayespilot_explain']['reasons_returned'] = 'reasons' in probe  # else: in warnings
            print(json.dumps({k: v for k, v in res['servers'][name]['sequential'].items() if k != 'runs'}),
                  json.dumps({k: v for k, v in res['servers'][name]['concurrent'].items() if k != 'runs'}), flush=True)
        S = res['servers']
        bp, fl = S['bayespilot'], S.get('floor')
        ex = S['bayespilot_explain']
        res['ratios'] = {} if fl is None else {
            'p50_vs_floor': bp['sequential']['p50_ms'] / fl['sequential']['p50_ms'],
            'throughput_vs_floor': bp['concurrent']['requests_per_s'] / fl['concurrent']['requests_per_s']}
        res['ratios'] |= {'explain_p50_minus_plain_ms': ex['sequential']['p50_ms'] - bp['sequential']['p50_ms'],
                         'explain_p99_minus_plain_ms': ex['sequential']['p99_ms'] - bp['sequential']['p99_ms'],
                         'explain_p50_vs_plain': ex['sequential']['p50_ms'] / bp['sequential']['p50_ms'],
                         'explain_throughput_vs_plain': ex['concurrent']['requests_per_s'] / bp['concurrent']['requests_per_s'],
                         'explain_batch_rows_per_s_vs_plain': ex['batch_1000']['rows_per_s'] / bp['batch_1000']['rows_per_s']}
        if 'mlflow' in S:
            res['ratios'] |= {'throughput_vs_mlflow': bp['concurrent']['requests_per_s'] / S['mlflow']['concurrent']['requests_per_s'],
                              'p50_mlflow_vs_bayespilot': S['mlflow']['sequential']['p50_ms'] / bp['sequential']['p50_ms']}
        goals = {'explain p50 <= plain p50 + 1 ms': res['ratios']['explain_p50_minus_plain_ms'] <= 1.0}
        if fl is not None: goals |= {'p50 <= 2x floor p50': res['ratios']['p50_vs_floor'] <= 2,
                                     'p99 <= 10 ms': bp['sequential']['p99_ms'] <= 10}
        if 'mlflow' in S: goals['throughput >= 5x mlflow serve'] = res['ratios']['throughput_vs_mlflow'] >= 5
        res['goals_met'] = goals
        res['load_average_at_end'] = list(os.getloadavg())
        OUT.mkdir(parents=True, exist_ok=True)
        stem = ('serving_explain' if a.only_explain else 'serving') + ('_quick' if a.quick else '')   # smoke: apart
        (OUT/f'{stem}.json').write_text(json.dumps(res, indent=2))
        plot(res, OUT/f'{stem}.png')
        print(json.dumps({'ratios': res['ratios'], 'goals_met': goals,
                          'batch_rows_per_s': bp['batch_1000']['rows_per_s']}, indent=2))
        print(f'figures: {OUT/(stem + ".json")}, {OUT/(stem + ".png")}')
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__': sys.exit(main())

"""Shared helpers for the API tests: a small fitted model saved as a verified artifact, and a live uvicorn server.

Import the fixtures into a test module with `from api_fixtures import *` (pytest puts tests/ on sys.path).
"""
import asyncio, json, os, re, signal, socket, subprocess, sys, tempfile, time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from bayespilot.artifacts import save_artifact
from bayespilot.config import DataSettings, DecisionSettings, FeatureSettings
from bayespilot.data import prepare
from bayespilot.features import make_pipeline
from bayespilot.stacking import prefit_stack
from bayespilot.synthetic import generate

__all__ = ['fitted', 'fit_model', 'fit_stack', 'save_model', 'free_port', 'live_server', 'model_dir', 'API_KEY', 'example_row', 'post_many']

API_KEY = 'test-key-7d1f'


def fit_model(n=2000, seed=1, C=1.0):
    "A small logistic-regression pipeline on the synthetic table: (pipeline, schema, X)."
    table, _ = generate(n, seed=seed)
    ds = prepare(table, DataSettings())
    pipe = make_pipeline(ds.schema, FeatureSettings(), LogisticRegression(C=C, max_iter=1000)).fit(ds.X, ds.y)
    return pipe, ds.schema, ds.X


def fit_stack(n, seed, max_iter, **hgb):
    "A deployed-style stack (logistic regression + boosting) on `n` generated rows: (stack, Dataset)."
    ds = prepare(generate(n, seed=seed)[0], DataSettings())
    members = {'lr': make_pipeline(ds.schema, None, LogisticRegression(max_iter=500)).fit(ds.X, ds.y),
               'hgb': make_pipeline(ds.schema, None, HistGradientBoostingClassifier(max_iter=max_iter, **hgb))
               .fit(ds.X, ds.y)}
    return prefit_stack(members, [0.6, 0.5], -0.1), ds


def save_model(pipe, schema, path, stage2=True, name='fixture-lr'):
    "Save `pipe` with a model card; a Stage-2 style card carries thresholds, policy and the registered model."
    card = {'name': name, 'schema': schema.to_dict(), 'metrics': {'roc_auc': 0.0}}
    if stage2:
        card |= {'thresholds': {'review': 0.25, 'escalate': 0.5, 'method': 'fixture'},
                 'policy': DecisionSettings().model_dump(mode='json'),
                 'registered_model': {'name': 'bayespilot-churn', 'version': 3, 'alias': 'champion'}}
    return save_artifact(pipe, path, card)


@pytest.fixture(scope='session')
def fitted():
    "(pipeline, schema, X) fitted once per test session (about a second)."
    return fit_model()


@pytest.fixture()
def model_dir(tmp_path, fitted):
    "A fresh folder holding the fixture model as models/deployed_pipeline.pkl (+ card)."
    pipe, schema, _ = fitted
    save_model(pipe, schema, tmp_path/'deployed_pipeline.pkl')
    return tmp_path


def example_row(X, i=0) -> dict:
    "Row i of the feature frame as a JSON-ready request body (missing values omitted)."
    row = X.iloc[i].to_dict()
    return {k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) else str(v))
            for k, v in row.items() if v is not None and v == v}


def free_port() -> int:
    "A TCP port free on 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@contextmanager
def live_server(model_path, log_path, workers=1, api_key=None, extra_env=None, timeout=60):
    "Run `uvicorn --factory bayespilot.api:create_app` on a free port; yields (base_url, process); always killed."
    port, mdir = free_port(), tempfile.mkdtemp(prefix='bp-metrics-')
    env = {k: v for k, v in os.environ.items() if not k.startswith('BAYESPILOT_')}
    env |= {'BAYESPILOT_MODEL_PATH': str(model_path), 'BAYESPILOT_LOG_PATH': str(log_path), 'BAYESPILOT_METRICS_DIR': mdir,
            'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1', **(extra_env or {})}
    if api_key: env['BAYESPILOT_API_KEY'] = api_key
    out = open(Path(log_path).parent/f'uvicorn-{port}.out', 'wb')
    proc = subprocess.Popen([sys.executable, '-m', 'uvicorn', '--factory', 'bayespilot.api:create_app',
                             '--host', '127.0.0.1', '--port', str(port), '--workers', str(workers),
                             '--log-level', 'warning', '--no-access-log'],
                            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f'server exited with {proc.returncode}: {Path(out.name).read_text()[-2000:]}')
            try:
                if httpx.get(f'{base}/health', timeout=1).status_code == 200: break
            except httpx.TransportError: pass
            if time.monotonic() > deadline: raise RuntimeError(f'server did not start in {timeout} s')
            time.sleep(0.1)
        if workers > 1: time.sleep(1.0 + 0.3 * workers)  # let every worker finish its lifespan (model load)
        yield base, proc
    finally:
        _kill(proc); out.close()


def _kill(proc, grace=10):
    "SIGTERM the server's process group, then SIGKILL whatever is left."
    if proc.poll() is None:
        try: os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError: pass
        try: proc.wait(grace)
        except subprocess.TimeoutExpired: pass
    try: os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    proc.wait(5)


async def _exchange(reader, writer, req: bytes):
    "One request on a keep-alive connection; (status, body bytes). Responses are Content-Length framed."
    writer.write(req)
    head = await reader.readuntil(b'\r\n\r\n')
    n = int(re.search(rb'(?i)\r\ncontent-length:\s*(\d+)', head).group(1))
    return int(head[9:12]), await reader.readexactly(n)


async def _post_many(port, path, bodies, request_ids, concurrency):
    reqs = iter(zip(request_ids, bodies))
    out = []
    async def conn():
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        try:
            for rid, body in reqs:
                b = json.dumps(body).encode()
                req = (f'POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n'
                       f'X-Request-ID: {rid}\r\nContent-Length: {len(b)}\r\n\r\n').encode() + b
                status, data = await _exchange(reader, writer, req)
                out.append((rid, status, json.loads(data)))
        finally: writer.close()
    await asyncio.gather(*(conn() for _ in range(concurrency)))
    return out


def post_many(base, path, bodies, request_ids, concurrency=64):
    """POST every body with its X-Request-ID over `concurrency` keep-alive connections (a lean raw-HTTP client, so
    that the client, sharing the machine with the server, is not the bottleneck); [(request_id, status, json)]."""
    port = int(base.rsplit(':', 1)[1])
    return asyncio.run(_post_many(port, path, bodies, request_ids, concurrency))

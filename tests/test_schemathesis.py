"""Schemathesis 4 against the LIVE server (uvicorn on 127.0.0.1), every check on: 0 failures.

The checks include status-code, content-type, response-schema and header conformance, negative-data rejection,
positive-data acceptance, unsupported methods and ignored auth (the spec declares the X-API-Key scheme). The number
of examples per operation is kept small enough for `make test` (ST_MAX_EXAMPLES, default 40; ST_SEED to vary the run).
"""
import json, os, re, subprocess, sys
from pathlib import Path

import pytest

from api_fixtures import *  # noqa: F401,F403  (fixtures: fitted, model_dir)
from api_fixtures import API_KEY, live_server, save_model

ST = Path(sys.executable).parent/'st'


@pytest.mark.skipif(not ST.exists(), reason='schemathesis is not installed (a dev requirement)')
def test_schemathesis_all_checks_against_the_live_server(tmp_path, fitted):
    pipe, schema, _ = fitted
    save_model(pipe, schema, tmp_path/'deployed_pipeline.pkl')
    env = {'BAYESPILOT_SETTINGS_JSON': json.dumps({'serving': {'max_batch': 20, 'max_body_bytes': 200_000}})}
    with live_server(tmp_path/'deployed_pipeline.pkl', tmp_path/'p.jsonl', api_key=API_KEY, extra_env=env) as (base, _):
        cmd = [str(ST), 'run', f'{base}/openapi.json', '--checks', 'all', '-H', f'X-API-Key: {API_KEY}',
               '--max-examples', os.environ.get('ST_MAX_EXAMPLES', '40'), '--seed', os.environ.get('ST_SEED', '42'),
               '--no-color', '--request-timeout', '10']
        p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env={**os.environ, 'SCHEMATHESIS_HOOKS': ''})
    out = p.stdout + p.stderr
    ops = re.search(r'Operations:\s+(\d+) selected / (\d+) total', out)
    cases = re.search(r'(\d+) generated, (\d+) (?:passed|found)', out)
    print(f"\nschemathesis: {ops and ops.group(1)} operations, {cases and cases.group(1)} cases, exit {p.returncode}")
    assert p.returncode == 0, out[-6000:]
    assert ops and int(ops.group(1)) == 7 and cases and int(cases.group(1)) > 300, out[-3000:]
    assert 'failure' not in out.split('SUMMARY')[-1].replace('0 failures', ''), out[-3000:]

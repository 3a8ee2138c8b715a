"""The randomized holdout and the decision audit end to end, on a live uvicorn server: the same customer lands in the
same arm in `/predict`, `/predict/batch` and `bayespilot score`; capacities count only the customers contacted;
every log line and every decisions-file row is recomputed by `holdout.audit`; a new policy file is picked up by
`/admin/reload`, and a tampered one is refused while the old one keeps serving."""
import json, math
import httpx
import numpy as np, pandas as pd
import pytest

from api_fixtures import *  # noqa: F401,F403  (fitted, save_model, live_server, API_KEY, example_row)
from bayespilot.config import Settings
from bayespilot.holdout import audit, holdout_arm
from bayespilot.policy import initial_policy, next_policy, write_policy
from bayespilot.score import score_file

SHARE, EXPERIMENT, N = 0.3, 'test-holdout', 300


def settings_json(tmp_path) -> dict:
    "The server's and the score run's settings: a 30 % holdout, the policies folder in the test's folder."
    return {'decision': {'holdout_share': SHARE, 'experiment': EXPERIMENT},
            'paths': {'policies': str(tmp_path/'policies'), 'reports': str(tmp_path/'reports')}}


def bodies(X, n=N) -> list[dict]:
    "n request bodies with ids C0000 …; a high value so that most customers are worth contacting."
    return [example_row(X, i) | {'customer_id': f'C{i:04d}', 'clv': 600.0} for i in range(n)]


def log_lines(path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


@pytest.fixture()
def served(tmp_path, fitted):
    "A live server (API key set) with the holdout on and policy version 1 in force; (base url, tmp_path, X)."
    pipe, schema, X = fitted
    save_model(pipe, schema, tmp_path/'deployed_pipeline.pkl')
    write_policy(next_policy(initial_policy(), {'review': {'alpha': 4.0, 'beta': 16.0},
                                                'escalate': {'alpha': 9.0, 'beta': 11.0}}), tmp_path/'policies')
    env = {'BAYESPILOT_SETTINGS_JSON': json.dumps(settings_json(tmp_path))}
    with live_server(tmp_path/'deployed_pipeline.pkl', tmp_path/'pred.jsonl', api_key=API_KEY, extra_env=env) as (base, _):
        yield base, tmp_path, X


def test_same_arm_in_api_batch_and_score_and_audit(served):
    base, tmp_path, X = served
    hdr = {'X-API-Key': API_KEY}
    rows = bodies(X)
    with httpx.Client(base_url=base, headers=hdr, timeout=30) as c:
        one = [c.post('/predict', json=r).json() for r in rows]
        batch = c.post('/predict/batch', json={'customers': rows}).json()['predictions']
        capped = c.post('/predict/batch', json={'customers': rows, 'capacities': {'review': 20, 'escalate': 10}}).json()
        anonymous = c.post('/predict', json={k: v for k, v in rows[0].items() if k != 'customer_id'}).json()
    ids = [r['customer_id'] for r in rows]
    arm = holdout_arm(ids, EXPERIMENT, SHARE)
    would = np.array([o['policy_action'] != 'monitor' for o in one])
    assert would.sum() > 100                                            # the check below has customers to look at
    assert [o['holdout'] for o in one] == (arm & would).tolist()       # /predict: the hash of (experiment, id)
    assert [b['holdout'] for b in batch] == (arm & would).tolist()     # /predict/batch, uncapacitated: the same
    assert all(o['action'] == 'monitor' and o['expected_value'] == 0 for o in one if o['holdout'])
    assert {o['policy_version'] for o in one} == {'policy-0001'}
    sd = math.sqrt(SHARE * (1 - SHARE) / would.sum())
    assert abs((arm & would).sum() / would.sum() - SHARE) < 4 * sd     # the share held out, binomial tolerance
    assert anonymous['holdout'] is False and any('no customer_id' in w for w in anonymous['warnings'])

    # capacities count only the customers really contacted; the held-out ones would have been contacted
    cp = capped['predictions']
    assert capped['actions']['review'] == 20 and capped['actions']['escalate'] == 10
    assert all(p['action'] == 'monitor' and p['policy_action'] != 'monitor' for p in cp if p['holdout'])
    assert all(arm[i] for i, p in enumerate(cp) if p['holdout']) and any(p['holdout'] for p in cp)

    # bayespilot score on the same customers: the same probabilities and arms
    frame = pd.DataFrame(rows).drop(columns='clv').assign(clv=600.0)
    frame.to_parquet(tmp_path/'base.parquet')
    s = Settings.model_validate(settings_json(tmp_path))
    summary = score_file(s, tmp_path/'base.parquet', tmp_path/'decisions.parquet', model=tmp_path/'deployed_pipeline.pkl',
                         progress=False, track=False)
    dec = pd.read_parquet(tmp_path/'decisions.parquet')
    assert dec['holdout'].tolist() == [o['holdout'] for o in one]
    assert dec['policy_action'].astype(str).tolist() == [o['policy_action'] for o in one]
    assert np.abs(dec['churn_probability'].to_numpy() - [o['churn_probability'] for o in one]).max() < 1e-9
    assert summary['policy_version'] == 'policy-0001' and (dec['policy_version'] == 'policy-0001').all()
    assert sum(summary['holdout']['held_out'].values()) == int(dec['holdout'].sum())

    # every line of the server's log and every row of the decisions file, recomputed from its own fields
    lines = log_lines(tmp_path/'pred.jsonl')
    assert len(lines) == 3 * N + 1
    for rec in lines:
        got = audit(rec)
        assert (got['action'], got['policy_action'], got['holdout']) == (rec['action'], rec['policy_action'],
                                                                          rec['holdout']), rec
        assert got['bound'] == rec['audit']['bound']
    assert {r['audit']['bound'] for r in lines} >= {'none', 'holdout', 'capacity'}
    for r in dec.to_dict('records'):
        got = audit(r)
        assert (got['action'], got['policy_action'], got['bound']) == (r['action'], r['policy_action'], r['bound'])


def test_policy_reload_in_a_live_server(served):
    base, tmp_path, X = served
    row = bodies(X, 1)[0]
    with httpx.Client(base_url=base, headers={'X-API-Key': API_KEY}, timeout=30) as c:
        before = c.post('/predict', json=row).json()
        assert before['policy_version'] == 'policy-0001' and before['audit']['gamma_escalate'] == pytest.approx(0.45)
        p1 = initial_policy()
        p2 = next_policy(next_policy(p1, {'review': {'alpha': 4.0, 'beta': 16.0}, 'escalate': {'alpha': 9.0, 'beta': 11.0}}),
                         {'review': {'alpha': 1.0, 'beta': 9.0}, 'escalate': {'alpha': 2.0, 'beta': 8.0}})
        write_policy(p2, tmp_path/'policies')
        assert c.post('/predict', json=row).json()['policy_version'] == 'policy-0001'   # not before a reload
        r = c.post('/admin/reload')
        assert r.status_code == 200 and r.json()['policy_version'] == 'policy-0002', r.text
        after = c.post('/predict', json=row).json()
        assert after['policy_version'] == 'policy-0002' and after['audit']['gamma_escalate'] == pytest.approx(0.2)
        assert c.get('/model').json()['policy_id'] == p2.id
        f3 = write_policy(next_policy(p2, {'review': {'alpha': 1.0, 'beta': 1.0}, 'escalate': {'alpha': 1.0, 'beta': 1.0}}),
                          tmp_path/'policies')
        f3.write_text(f3.read_text().replace('"alpha": 1.0', '"alpha": 99.0', 1))                 # tampered
        refused = c.post('/admin/reload')
        assert refused.status_code == 409 and 'policy-0003.json' in refused.json()['reason'], refused.text
        still = c.post('/predict', json=row).json()
        assert still['policy_version'] == 'policy-0002' and still['audit']['gamma_escalate'] == pytest.approx(0.2)
    line = log_lines(tmp_path/'pred.jsonl')[-1]
    assert line['policy_version'] == 'policy-0002' and line['model_version'] == 'bayespilot-churn:3'


def test_spark_path_assigns_the_same_arm(tmp_path, fitted):
    "The Spark path's batch functions (plain pandas in, pandas out: Spark only carries the batches) hash as the API."
    from bayespilot.model_store import load_model
    from bayespilot.spark import decide_rows, score_batches
    pipe, schema, X = fitted
    save_model(pipe, schema, tmp_path/'deployed_pipeline.pkl')
    s = Settings.model_validate(settings_json(tmp_path))
    m = load_model(tmp_path/'deployed_pipeline.pkl', s)
    rows = pd.DataFrame(bodies(X))
    rows.to_parquet(tmp_path/'base.parquet')
    batch = rows.reindex(columns=schema.features).assign(_id=rows['customer_id'].astype(str), _value=rows['clv'],
                                                          _row=np.arange(len(rows)))
    scored = next(score_batches(m)(iter([batch])))
    assert scored['arm'].tolist() == holdout_arm(rows['customer_id'], EXPERIMENT, SHARE).tolist()
    spark_rows = next(decide_rows(m)(iter([scored.assign(action=scored['action0'])])))
    score_file(s, tmp_path/'base.parquet', tmp_path/'local.parquet', model=tmp_path/'deployed_pipeline.pkl',
               progress=False, track=False)
    local = pd.read_parquet(tmp_path/'local.parquet')
    assert spark_rows['holdout'].any()
    for k in ('action', 'policy_action', 'holdout', 'bound'):
        assert spark_rows[k].astype(str).tolist() == local[k].astype(str).tolist(), k

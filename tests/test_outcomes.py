"""`bayespilot outcomes` end to end: outcomes joined to a real prediction log and to a `bayespilot score` decisions
file, a past randomized campaign, the new policy version verified and read back, and every kind of bad input refused
with exit code 2 and the policy folder left exactly as it was."""
import json
import numpy as np, pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from bayespilot.artifacts import save_artifact
from bayespilot.config import DataSettings, Settings
from bayespilot.data import prepare
from bayespilot.features import make_pipeline
from bayespilot.holdout import decide_holdout, holdout_arm
from bayespilot.model_store import load_model
from bayespilot.monitoring import PredictionLog, prediction_record
from bayespilot.policy import latest_policy, read_policy
from bayespilot.score import chunk_probabilities
from bayespilot.synthetic import generate, true_churn_probability
from conftest import cli_env, run_cli

GAMMA = {'review': 0.15, 'escalate': 0.35}      # the truth the outcomes are drawn with


def draw_outcomes(base, actions, seed):
    "Churn drawn from the generator's true probabilities, reduced by the true gamma of the action each one got."
    g = pd.Series(actions).map(GAMMA).fillna(0.0).to_numpy()
    return np.random.default_rng(seed).random(len(base)) < true_churn_probability(base) * (1 - g)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A deployed model; 4 000 customers decided with a 20 % holdout, logged line by line; their outcomes."
    d = tmp_path_factory.mktemp('outcomes')
    ds = prepare(generate(3000, seed=1)[0], DataSettings())
    pipe = make_pipeline(ds.schema, None, LogisticRegression(max_iter=500)).fit(ds.X, ds.y)
    save_artifact(pipe, d/'deployed_pipeline.pkl', {'schema': ds.schema.to_dict()})
    m = load_model(d/'deployed_pipeline.pkl', Settings())
    base = generate(4000, seed=2)[0]
    p = chunk_probabilities(m, prepare(base, DataSettings()).X)
    dsh = m.decision.model_copy(update={'holdout_share': 0.2, 'experiment': 'policy-0000'})
    dec = decide_holdout(p, base['clv'].to_numpy(float), dsh, holdout_arm(base['customer_id'], 'policy-0000', 0.2))
    ts = pd.Timestamp('2026-11-01T10:00Z').to_pydatetime()
    with PredictionLog(d/'logs'/'predictions.jsonl') as log:
        log.write_many(prediction_record(request_id=f'r{i}', features={}, churn_probability=float(p[i]),
                                         tier=str(dec['tier'][i]), action=str(dec['action'][i]),
                                         customer_id=str(base['customer_id'][i]), model_version=m.version, ts=ts,
                                         holdout=bool(dec['holdout'][i]), policy_action=str(dec['policy_action'][i]),
                                         policy_version='policy-0000', audit={'value': float(dec['value'][i])})
                       for i in range(len(p)))
    churned = draw_outcomes(base, dec['action'].astype(str), seed=3)
    pd.DataFrame({'customer_id': base['customer_id'], 'churned': np.where(churned, 'Yes', 'No'),
                  'observed_at': '2026-11-29T08:00'}).to_csv(d/'outcomes.csv', index=False)
    return d, base, dec


def folder_state(folder):
    "Every file of a folder with its bytes (empty when the folder does not exist)."
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def outcomes_args(d, policies, *args):
    "`outcomes` flags for the world's model, a policy folder and reports beside it."
    return ['outcomes', '--model', str(d/'deployed_pipeline.pkl'), '--policies-dir', str(policies),
            '--reports-dir', str(policies.parent/f'{policies.name}_reports'), *map(str, args)]


def test_log_end_to_end(world):
    d, base, dec = world
    policies = d/'policies_log'
    r = run_cli(*outcomes_args(d, policies, '--file', d/'outcomes.csv', '--log', d/'logs'/'predictions.jsonl'),
                cwd=d, env=cli_env(MLFLOW_TRACKING_URI=f"sqlite:///{d/'mlflow.db'}"))
    assert r.returncode == 0, r.stderr
    assert 'learned from 4,000 customers' in r.stdout and 'policy version 1 (parent 0)' in r.stdout, r.stdout
    pol = read_policy(policies/'policy-0001.json')                   # sealed, verified on reading
    assert latest_policy(policies) == pol and pol.parent == 0
    report = json.loads((d/'policies_log_reports'/'outcomes'/'outcomes.json').read_text())
    assert report['mlflow']['run_id'] and report['n_used'] == 4000
    for a, g in GAMMA.items():
        b = report['actions'][a]
        assert b['interval'][0] < g < b['interval'][1], (a, b['interval'])
        assert b['n_held_out'] == int((dec['holdout'] & (dec['policy_action'].astype(str) == a)).sum())
        mean = pol.actions[a]['alpha'] / (pol.actions[a]['alpha'] + pol.actions[a]['beta'])
        assert mean == pytest.approx(b['mean'], rel=1e-9)           # the next prior: the moment-matched Beta
    html = (d/'policies_log_reports'/'outcomes'/'outcomes.html').read_text()
    assert 'data:image/png;base64,' in html and 'policy version 1' in html
    before = folder_state(policies)                                  # the same file twice: refused, nothing written
    from bayespilot.cli import main
    assert main(outcomes_args(d, policies, '--file', d/'outcomes.csv', '--log', d/'logs'/'predictions.jsonl',
                              '--no-mlflow')) == 2
    assert folder_state(policies) == before


def test_decisions_file_from_score(world, tmp_path):
    d, base, _ = world
    (tmp_path/'holdout.toml').write_text('[decision]\nholdout_share = 0.25\nexperiment = "batch-1"\n')
    generate(4000, seed=2)[0].drop(columns='churned').to_csv(tmp_path/'base.csv', index=False)
    from bayespilot.cli import main
    assert main(['score', '--config', str(tmp_path/'holdout.toml'), '--model', str(d/'deployed_pipeline.pkl'),
                 '--data', str(tmp_path/'base.csv'), '--out', str(tmp_path/'decisions.parquet'), '--quiet',
                 '--no-mlflow', '--reports-dir', str(tmp_path/'reports')]) == 0
    dec = pd.read_parquet(tmp_path/'decisions.parquet')
    assert dec['holdout'].any()
    churned = draw_outcomes(base, dec['action'].astype(str).to_numpy(), seed=4)
    pd.DataFrame({'customer_id': dec['customer_id'], 'churned': churned.astype(int),
                  'observed_at': '2099-01-01'}).to_csv(tmp_path/'out.csv', index=False)   # after the file was written
    policies = tmp_path/'policies'
    assert main(outcomes_args(d, policies, '--file', tmp_path/'out.csv', '--decisions', tmp_path/'decisions.parquet',
                              '--no-mlflow')) == 0
    pol = latest_policy(policies)
    assert pol.version == 1 and pol.evidence['inputs']['decisions_dated_by'] == 'file time'
    assert pol.evidence['actions']['escalate']['n_held_out'] > 0


def campaign_table(path, n=6000, seed=9):
    "A past campaign randomized 1 : 1 : 1 over no offer, an email (review) and a call (escalate)."
    camp = generate(n, seed=seed)[0].drop(columns='churned')
    grp = np.random.default_rng(seed).choice(['none', 'email', 'call'], n)
    churned = draw_outcomes(camp, pd.Series(grp).map({'email': 'review', 'call': 'escalate'}), seed=seed + 1)
    camp.assign(offer=grp, outcome=np.where(churned, 'yes', 'no')).to_csv(path, index=False)
    return grp


def test_campaign_import(world, tmp_path):
    d, _, _ = world
    grp = campaign_table(tmp_path/'campaign.csv')
    from bayespilot.cli import main
    policies = tmp_path/'policies'
    assert main(outcomes_args(d, policies, '--campaign', tmp_path/'campaign.csv', '--action-column', 'offer',
                              '--control-label', 'none', '--outcome-column', 'outcome',
                              '--action-map', 'email=review,call=escalate', '--no-mlflow')) == 0
    pol = latest_policy(policies)
    for a, g in GAMMA.items():
        b = pol.evidence['actions'][a]
        assert b['n_held_out'] == int((grp == 'none').sum())
        for est in b['arm_estimate'].values():                       # the table's own arm means, raw and adjusted
            assert b['interval'][0] < est < b['interval'][1], (a, est, b['interval'])
        assert b['interval'][0] < g < b['interval'][1], (a, g, b['interval'])


def bad_outcomes(d, ids, tmp):
    "Each bad input: (name, flags, a piece of the message)."
    head = 'customer_id,churned,observed_at\n'
    files = {'unknown.csv': f'{head}{ids[0]},yes,2026-11-29\nnobody,no,2026-11-29\n',
             'duplicate.csv': f'{head}{ids[0]},yes,2026-11-29\n{ids[1]},no,2026-11-29\n{ids[0]},no,2026-11-30\n',
             'early.csv': f'{head}{ids[0]},yes,2026-10-01\n',
             'churned.csv': f'{head}{ids[0]},yes,2026-11-29\n{ids[1]},maybe,2026-11-29\n',
             'date.csv': f'{head}{ids[0]},yes,29/11/2026\n'}
    for name, text in files.items(): (tmp/name).write_text(text)
    log = ['--log', d/'logs'/'predictions.jsonl']
    return [('unknown', ['--file', tmp/'unknown.csv', *log], "unknown_customer 1 (no decision for that customer id; "
                                                             "e.g. ['nobody'])"),
            ('duplicate', ['--file', tmp/'duplicate.csv', *log], f"have more than one outcome: '{ids[0]}' (rows 1, 3)"),
            ('before decision', ['--file', tmp/'early.csv', *log], "before_decision 1"),
            ('churned', ['--file', tmp/'churned.csv', *log], "column 'churned': 1 value(s) are not yes/no, 1/0 or "
                                                              "true/false: ['maybe'] (row 2)"),
            ('date', ['--file', tmp/'date.csv', *log], "['29/11/2026'] (row 1)")]


def test_bad_input_exits_2_and_leaves_the_policy(world, tmp_path, capsys):
    d, base, dec = world
    from bayespilot.cli import main
    policies = tmp_path/'policies'
    campaign_table(tmp_path/'campaign.csv', n=600)
    assert main(outcomes_args(d, policies, '--campaign', tmp_path/'campaign.csv', '--action-column', 'offer',
                              '--control-label', 'none', '--outcome-column', 'outcome', '--no-mlflow',
                              '--action-map', 'email=review,call=escalate')) == 0     # a previous policy to protect
    before = folder_state(policies)
    assert list(before) == ['policy-0001.json']
    campaign_table(tmp_path/'other_campaign.csv', n=600, seed=11)      # not learned from yet: its own errors show
    ids = base['customer_id'].astype(str).tolist()
    contacted = base['customer_id'].astype(str)[(dec['action'].astype(str) != 'monitor').to_numpy()]
    (tmp_path/'treated_only.csv').write_text('customer_id,churned,observed_at\n'
                                             + ''.join(f'{i},no,2026-11-29\n' for i in contacted))
    cases = bad_outcomes(d, ids, tmp_path) + [
        ('empty holdout arm', ['--file', tmp_path/'treated_only.csv', '--log', d/'logs'/'predictions.jsonl'],
         'has no customers'),
        ('control label absent', ['--campaign', tmp_path/'other_campaign.csv', '--action-column', 'offer', '--control-label',
                                  'control', '--outcome-column', 'outcome'],
         "the control label 'control' is not in the action column; labels present: ['call', 'email', 'none']"),
        ('unmapped label', ['--campaign', tmp_path/'other_campaign.csv', '--action-column', 'offer', '--control-label',
                            'none', '--outcome-column', 'outcome'], "action label(s) ['call', 'email']"),
        ('same campaign again', ['--campaign', tmp_path/'campaign.csv', '--action-column', 'offer', '--control-label',
                                 'none', '--outcome-column', 'outcome', '--action-map', 'email=review,call=escalate'],
         'already learned from by policy version 1')]
    for name, flags, message in cases:
        capsys.readouterr()
        assert main(outcomes_args(d, policies, *flags, '--no-mlflow')) == 2, name
        err = capsys.readouterr().err
        assert err.startswith('error: ') and message in err, (name, err)
        assert folder_state(policies) == before, name

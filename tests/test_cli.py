"The `bayespilot` command end to end: generate + train in a scratch folder, the real tables, and bad input."
import hashlib, json, shutil, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from conftest import cli_env, run_cli

N_ROWS = 3000


def error_lines(stderr: str) -> list[str]:
    "The lines of stderr that report an error."
    return [l for l in stderr.splitlines() if l.startswith('error:')]


# ---- generate + train on a small synthetic table, default paths, cwd = a scratch project folder ----

@pytest.fixture(scope='module')
def project(tmp_path_factory):
    "A folder where `bayespilot generate` then `bayespilot train` ran on the embedded defaults."
    root = tmp_path_factory.mktemp('project')
    gen = run_cli('generate', '--n', N_ROWS, '--seed', 1, cwd=root)
    assert gen.returncode == 0, gen.stderr
    train = run_cli('train', cwd=root)
    assert train.returncode == 0, train.stderr
    return root, gen, train


def test_generate_writes_table_and_separate_truth(project):
    root, gen, _ = project
    table, truth = pd.read_csv(root/'data'/'churn.csv'), pd.read_csv(root/'data'/'churn_truth.csv')
    assert len(table) == len(truth) == N_ROWS
    assert list(truth.columns) == ['customer_id', 'churn_probability']
    assert 'churn_probability' not in table.columns and set(table['churned'].unique()) == {0, 1}
    assert 'data/churn.csv' in gen.stdout


def test_train_writes_artifact_card_and_report(project):
    root, _, train = project
    pkl, card_file = root/'models'/'artifacts'/'churn_pipeline.pkl', root/'models'/'artifacts'/'churn_pipeline.json'
    card = json.loads(card_file.read_text())
    assert card['sha256'] == hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert card['name'] == 'churn_pipeline' and card['schema']['target'] == 'churned'
    assert {'customer_id', 'clv', 'churned'}.isdisjoint(card['schema']['numeric'] + card['schema']['categorical'])
    assert {'sklearn', 'mlflow'} <= set(card['library_versions']) and card['data_fingerprint']['sha256']
    report = json.loads((root/'reports'/'stage1'/'metrics.json').read_text())
    model, best = report['model'], report['bayes_optimal']
    assert report['n_test'] == model['n'] == round(0.2 * N_ROWS)
    assert 0.65 < model['roc_auc'] <= best['roc_auc'] + 0.03 and best['log_loss'] < model['log_loss'] + 0.03
    assert card['metrics'] == model
    for f in ('roc_pr.png', 'reliability.png'): assert (root/'reports'/'stage1'/f).stat().st_size > 1000
    out = train.stdout
    assert 'models/artifacts/churn_pipeline.pkl' in out and 'reports/stage1' in out and 'sqlite:///mlflow.db' in out
    assert f"{model['roc_auc']:.4f}" in out


def test_train_records_one_mlflow_run(project):
    from mlflow import MlflowClient
    root, _, _ = project
    card = json.loads((root/'models'/'artifacts'/'churn_pipeline.json').read_text())
    client = MlflowClient(f"sqlite:///{root/'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name('bayespilot').experiment_id], "params.`data.path` = 'data/churn.csv'")
    assert [r.info.run_id for r in runs] == [card['mlflow_run_id']] and runs[0].info.status == 'FINISHED'
    run = runs[0]
    assert run.data.params['data.target'] == 'churned' and run.data.params['baseline.C'] == '1.0'
    assert run.data.metrics['test_roc_auc'] == pytest.approx(card['metrics']['roc_auc'])
    assert 'bayes_optimal_roc_auc' in run.data.metrics
    files = {a.path for a in client.list_artifacts(run.info.run_id, 'stage1')}
    assert {'stage1/churn_pipeline.pkl', 'stage1/churn_pipeline.json', 'stage1/metrics.json'} <= files
    assert any(m.name == 'model' for m in client.search_logged_models([run.info.experiment_id]))


def test_artifact_scores_raw_rows_and_rejects_tampering(project, tmp_path):
    from bayespilot.artifacts import IntegrityError, load_artifact
    root, _, _ = project
    model, card = load_artifact(root/'models'/'artifacts'/'churn_pipeline.pkl')
    raw = pd.read_csv(root/'data'/'churn.csv', dtype=str, keep_default_na=False).head(20)  # text as in the file
    p = model.predict_proba(raw)[:, 1]
    assert p.shape == (20,) and ((p > 0) & (p < 1)).all()
    for f in ('churn_pipeline.pkl', 'churn_pipeline.json'): shutil.copy(root/'models'/'artifacts'/f, tmp_path/f)
    blob = bytearray((tmp_path/'churn_pipeline.pkl').read_bytes()); blob[-2] ^= 1
    (tmp_path/'churn_pipeline.pkl').write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match='sha256'): load_artifact(tmp_path/'churn_pipeline.pkl')
    r = run_cli('serve', '--model', 'churn_pipeline.pkl', '--port', 1, cwd=tmp_path)  # refused before any server starts
    assert r.returncode == 2 and error_lines(r.stderr) == [r.stderr.strip()] and 'does not match its model card' in r.stderr


def test_help_describes_every_flag():
    exe = Path(sys.executable).parent/'bayespilot'  # the console script
    flags = {'generate': ['--n', '--seed', '--out', '--drift', '--config'],
             'train': ['--config', '--data', '--target', '--positive', '--id', '--value', '--exclude', '--truth', '--seed',
                       '--artifacts-dir', '--reports-dir', '--tracking-uri', '--quiet'],
             'serve': ['--host', '--port', '--workers', '--model', '--config']}
    for cmd, expected in flags.items():
        r = subprocess.run([str(exe), cmd, '--help'], capture_output=True, text=True, env=cli_env())
        assert r.returncode == 0 and 'examples:' in r.stdout, r.stderr
        for f in expected: assert f in r.stdout, (cmd, f)


# ---- the real tables, with the exact commands from the README (skipped without ../shared/data) ----
# They log to the project's MLflow store (via MLFLOW_TRACKING_URI, leaving the commands unchanged): creating a store costs seconds.

def store_env(project) -> dict:
    "Environment pointing MLflow at the project fixture's store."
    return cli_env(MLFLOW_TRACKING_URI=f"sqlite:///{project[0]/'mlflow.db'}")


def test_train_telco(beside_shared, project):
    r = run_cli('train', '--data', '../shared/data/telco_churn.csv', '--target', 'Churn', '--positive', 'Yes', '--id', 'customerID',
                cwd=beside_shared, env=store_env(project))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((beside_shared/'reports'/'stage1'/'metrics.json').read_text())
    assert 0.82 <= metrics['model']['roc_auc'] <= 0.87, metrics['model']
    assert 'bayes_optimal' not in metrics and metrics['n_test'] == 1409
    schema = json.loads((beside_shared/'models'/'artifacts'/'churn_pipeline.json').read_text())['schema']
    assert 'TotalCharges' in schema['numeric'] and 'customerID' not in schema['categorical'] and schema['id'] == 'customerID'


def test_train_tv_subscriptions(beside_shared, project):
    r = run_cli('train', '--data', '../shared/data/tv_subscriptions.csv.gz', '--target', 'target', '--positive', '1', '--id', 'id',
                '--exclude', 'C_FP,C_FN,C_TP,C_TN', cwd=beside_shared, env=store_env(project))
    assert r.returncode == 0, r.stderr
    card = json.loads((beside_shared/'models'/'artifacts'/'churn_pipeline.json').read_text())
    features = card['schema']['numeric'] + card['schema']['categorical']
    assert len(features) == 46 and {'C_FP', 'C_FN', 'C_TP', 'C_TN', 'id', 'target'}.isdisjoint(features)
    assert card['metrics']['n'] == 1876 and 0.5 < card['metrics']['roc_auc'] < 0.8
    assert card['metrics']['base_rate'] == pytest.approx(0.048, abs=0.005)


# ---- bad input: exit 2, one clear line, no traceback, nothing written ----

TABLE = "customer_id,tenure,plan,churned\n" + "".join(f"c{i},{i % 40},{'ab'[i % 2]},{int(i % 3 == 0)}\n" for i in range(60))

BAD = {
    'malformed TOML': (['--config', 'bad.toml'], '[data\ntarget = "churned"\n', 'malformed TOML'),
    'unknown key': (['--config', 'bad.toml'], '[data]\npath = "t.csv"\npositiv = 1\n', 'data.positiv: unknown key'),
    'wrong type': (['--config', 'bad.toml'], '[data]\npath = "t.csv"\n[split]\nseed = "forty-two"\n', 'split.seed'),
    'missing data file': (['--data', 'nope.csv', '--target', 'churned', '--positive', '1'], None, 'nope.csv'),
    'missing target': (['--data', 't.csv', '--target', 'left', '--positive', '1'], None, "'left'"),
    'positive not present': (['--data', 't.csv', '--target', 'churned', '--positive', 'Yes'], None, "'Yes'"),
}


@pytest.mark.parametrize('case', BAD)
def test_bad_input_is_one_clear_error(case, tmp_path):
    args, toml, expected = BAD[case]
    (tmp_path/'t.csv').write_text(TABLE)
    if toml: (tmp_path/'bad.toml').write_text(toml)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run_cli('train', *args, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    errors = error_lines(r.stderr)
    assert len(errors) == 1 and expected in errors[0], r.stderr
    assert r.stderr.strip().splitlines()[-1] == errors[0] and 'Traceback' not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no models/, reports/, mlflow.db


def test_bad_flag_value_exits_2(tmp_path):
    r = run_cli('generate', '--n', 'many', cwd=tmp_path)
    assert r.returncode == 2 and "invalid int value: 'many'" in r.stderr and 'Traceback' not in r.stderr
    assert list(tmp_path.iterdir()) == []

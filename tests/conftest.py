"Shared fixtures for the end-to-end tests: run the installed `bayespilot` command in a scratch folder."
import os, subprocess, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent/'shared'/'data'


# Settings that must not reach a command under test from the environment of whoever runs the tests.
OUTSIDE = ('MLFLOW_TRACKING_URI', 'MLFLOW_REGISTRY_URI', 'MLFLOW_EXPERIMENT_ID', 'MLFLOW_EXPERIMENT_NAME', 'MLFLOW_RUN_ID')


def cli_env(**extra) -> dict:
    "The test process's environment without MLflow or BayesPilot settings from outside, plus `extra`."
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE and not k.startswith('BAYESPILOT_')}
    return {**env, 'PYTHONUNBUFFERED': '1', **extra}


def run_cli(*args, cwd, env=None, timeout=180) -> subprocess.CompletedProcess:
    "Run `python -m bayespilot.cli ARGS` from the venv in `cwd`; text output captured."
    return subprocess.run([sys.executable, '-m', 'bayespilot.cli', *map(str, args)], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='session')
def shared_data() -> Path:
    "The shared real tables (../shared/data from the repo root); the test is skipped where they are absent."
    if not SHARED_DATA.is_dir(): pytest.skip(f"real data not available: {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture
def beside_shared(tmp_path, shared_data):
    "A scratch folder `work/` with `../shared` next to it, so the README's relative commands run unchanged."
    root = tmp_path
    (root/'shared').symlink_to(shared_data.parent, target_is_directory=True)
    (root/'work').mkdir()
    return root/'work'

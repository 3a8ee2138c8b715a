"""One end-to-end Spark run on local[2] with small data: `score_file_spark` gives the decisions of the local path
(the same actions under global capacities, probabilities to 1e-12). Spark starts only in this module."""
import numpy as np, pandas as pd
import pytest

pytest.importorskip('pyspark')

from bayespilot.config import Settings
from bayespilot.data import read_table
from bayespilot.score import score_file
from bayespilot.synthetic import generate
from test_score import world  # noqa: F401  (the deployed stack and base of test_score)


def test_spark_equals_local(world, tmp_path):
    d, _, schema, _ = world
    from bayespilot.spark import score_file_spark, spark_session
    base = read_table(d/'base.csv')
    base.iloc[:1500].to_parquet(tmp_path/'part1.parquet'); base.iloc[1500:].to_parquet(tmp_path/'part2.parquet')
    (tmp_path/'in').mkdir()
    for f in ('part1', 'part2'): (tmp_path/f'{f}.parquet').rename(tmp_path/'in'/f'{f}.parquet')  # a Parquet folder
    s = Settings.model_validate({'paths': {'reports': str(tmp_path/'reports')}})
    kw = dict(model=d/'deployed_pipeline.pkl', capacity='review=150,escalate=40', progress=False, track=False)
    local = score_file(s, d/'base.parquet', tmp_path/'local.parquet', chunk_rows=1000, **kw)
    spark = spark_session('local[2]')
    try:
        sp = score_file_spark(s, tmp_path/'in', tmp_path/'spark.parquet', spark=spark, **kw)
    finally: spark.stop()
    a = pd.read_parquet(tmp_path/'local.parquet')
    b = pd.read_parquet(tmp_path/'spark.parquet').set_index('customer_id').loc[a['customer_id']].reset_index()
    assert len(b) == 4000    # a folder's files are read in Spark's order: compared customer by customer
    assert np.abs(a['churn_probability'] - b['churn_probability']).max() < 1e-12
    assert a['action'].astype(str).tolist() == b['action'].astype(str).tolist()
    assert np.abs(a['expected_value'] - b['expected_value']).max() < 1e-9
    assert sp['counts'] == local['counts'] and sp['counts']['review'] == 150
    assert sp['expected_profit'] == pytest.approx(local['expected_profit'], rel=1e-9)
    free = score_file(s, d/'base.parquet', tmp_path/'free.parquet', chunk_rows=1000, **{**kw, 'capacity': None})
    assert free['counts']['review'] + free['counts']['escalate'] > 190             # the capacities did bind above
    assert (a['warnings'].fillna('') == b['warnings'].fillna('')).all()

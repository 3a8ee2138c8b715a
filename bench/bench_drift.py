"""`bayespilot monitor` against its goals (issue 11): drift flags on the same and the drifted population, label-free
performance against the realised one, the coverage of the expected-profit interval, and the time and memory of
monitoring a million log lines.

Model: the Stage 1 pipeline (logistic regression) trained on 20 000 generated customers (seed 42, as `make run`), its
reference profile built from its 80 % training rows and 20 % test rows. Windows: fresh generator draws of 5 000 rows.
Baselines, in the same run: a two-sample test per feature (scipy KS for numbers, chi-square for categories, p < 0.05)
for the drift flags; "nothing changed" (the reference's own held-out value) and the oracle (the same label-free
estimate from the generator's true probabilities, whose misses are label noise alone) for the performance
estimates; and for the time of a million log lines, the reader before pyarrow (its source at BASELINE_READER's
commit, run by the same CLI), alternating with today's so both see the same machine load.

Writes the `monitor` section of reports/bench/monitoring.json (other sections kept).
Usage: python bench/bench_drift.py [--quick] [--only drift performance profit throughput]
"""
import argparse, gzip, json, os, resource, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from scipy import stats

from bayespilot.artifacts import save_artifact
from bayespilot.config import DataSettings, DecisionSettings, MonitoringSettings, Settings
from bayespilot.baseline import fit_baseline
from bayespilot.data import prepare, split_indices
from bayespilot.decision import decide_batch
from bayespilot.drift import level_counts_of
from bayespilot.label_free import realised_performance
from bayespilot.monitor_checks import assess, frame_window
from bayespilot.monitoring import prediction_record, to_json_line
from bayespilot.profit import policy_actions, realised_profit
from bayespilot.reference import build_reference
from bayespilot.schema import to_levels, to_numeric
from bayespilot.synthetic import generate
from common import portable

ROOT = Path(__file__).resolve().parent.parent
MOVED = ['monthly_charges', 'total_charges', 'contract', 'days_since_last_login']   # what `drift=True` changes
DS, MS = DecisionSettings(), MonitoringSettings()


def train(held_out=False):
    "The Stage 1 pipeline on 20 000 customers (seed 42), its reference profile (and the held-out p, y)."
    s = Settings()
    d = prepare(generate(20_000, seed=42)[0], s.data)
    tr, _, te = split_indices(d.y, 0.2, 0.0, 42)
    pipe = fit_baseline(d.X.iloc[tr], d.y[tr], d.schema, s)
    p = pipe.predict_proba(d.X.iloc[te])[:, 1]
    ref = build_reference(d.schema, d.X.iloc[tr], p, d.y[te], d.value.to_numpy()[te], DS, MS)
    return (pipe, d.schema, ref, (p, d.y[te])) if held_out else (pipe, d.schema, ref)


def window(pipe, schema, n, seed, drift=False, concept=False, truth=False):
    "A labelled window of n fresh customers: (Window, raw features[, the generator's true probabilities])."
    table, q = generate(n, seed=seed, drift=drift, concept_drift=concept)
    d = prepare(table, DataSettings())
    p = pipe.predict_proba(d.X)[:, 1]; v = d.value.to_numpy()
    w = frame_window(d.X, p, policy_actions(DS.policy, p, v, DS, warn=False), v, d.y, schema)
    return (w, d.X, q['churn_probability'].to_numpy()) if truth else (w, d.X)


def test_flags(ref_X, X, schema) -> set:
    "Features a plain two-sample test flags at p < 0.05 (KS for numbers, chi-square for categories)."
    out = set()
    for c in schema.numeric:
        a, b = to_numeric(ref_X[c]), to_numeric(X[c])
        if stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)]).pvalue < 0.05: out.add(c)
    for c in schema.categorical:
        ra, wa = level_counts_of(to_levels(ref_X[c]))[0], level_counts_of(to_levels(X[c]))[0]
        levels = sorted(set(ra) | set(wa))
        table = np.array([[ra.get(k, 0) for k in levels], [wa.get(k, 0) for k in levels]]) + 0.5
        if stats.chi2_contingency(table)[1] < 0.05: out.add(c)
    return out


def drift_section(pipe, schema, ref, seeds, n):
    "Flag rates on the same and the drifted population, ours and the two-sample tests', over `seeds`."
    ref_X = prepare(generate(20_000, seed=42)[0], DataSettings()).X
    out = {}
    for name, drift in (('same_population', False), ('drifted_population', True)):
        ours, tests, per_seed = [], [], []
        for s in seeds:
            w, X = window(pipe, schema, n, s, drift=drift)
            flagged = set(assess(ref, w, DS, MS)['drifted_features'])
            ours.append(flagged); tests.append(test_flags(ref_X, X, schema)); per_seed.append(sorted(flagged))
        k = len(ref['features'])
        out[name] = {'windows': len(seeds), 'rows': n, 'features': k,
                     'share_flagged': round(sum(map(len, ours)) / (k * len(seeds)), 4),
                     'share_flagged_two_sample_tests': round(sum(map(len, tests)) / (k * len(seeds)), 4),
                     'moved_features_flagged_in_every_window': all(set(MOVED) <= f for f in ours),
                     'unmoved_features_flagged': sorted(set().union(*ours) - set(MOVED)),
                     'flagged_per_window_example': per_seed[0]}
    return out


def cross_entropy(q, p) -> float:
    "Log loss of predictions p expected when each label is drawn with probability q (q = p: the entropy of p)."
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return float(np.mean(-q * np.log(p) - (1 - q) * np.log1p(-p)))


def logistic_recalibration(p, y):
    "(a, b) of P(y) = expit(a + b logit p) fitted by maximum likelihood on labelled rows (Platt on the log-odds)."
    from scipy.optimize import minimize
    from scipy.special import expit, logit
    x = logit(np.clip(p, 1e-6, 1 - 1e-6))
    nll = lambda ab: -np.sum(y * np.log(expit(ab[0] + ab[1] * x)) + (1 - y) * np.log(expit(-ab[0] - ab[1] * x)))
    return minimize(nll, [0.0, 1.0], method='L-BFGS-B').x


def error_summary(errors: dict, within: float) -> dict:
    "Per estimator: share of windows within `within`, median |error| and median signed error."
    out = {}
    for k, e in errors.items():
        e = np.asarray(e, dtype=float)
        out[k] = {f'within_{within:g}': round(float(np.mean(np.abs(e) <= within)), 3),
                  'abs_error_median': round(float(np.median(np.abs(e))), 4),
                  'signed_error_median': round(float(np.median(e)), 4),
                  'abs_error_max': round(float(np.abs(e).max()), 4)}
    return out


def performance_section(pipe, schema, ref, seeds, n, held_out):
    """Estimated vs realised ROC AUC and log loss on labelled windows (base, drifted, concept-drifted), next to
    the oracle (the same estimate from the generator's true probabilities: what label noise alone leaves), the
    no-change baseline (the reference's realised value) and a recalibration on the reference's held-out labels."""
    from scipy.special import expit, logit
    out, ref_real = {}, ref['performance']['realised']
    a, b = logistic_recalibration(*held_out)
    for name, kw in (('base', {}), ('drifted', {'drift': True}), ('concept_drift', {'concept': True})):
        auc, cover = {'ours': [], 'no_change': []}, []
        ll = {'ours': [], 'oracle': [], 'no_change': [], 'recalibrated': []}
        for s in seeds:
            w, _, q = window(pipe, schema, n, s, truth=True, **kw)
            perf = assess(ref, w, DS, MS)['performance']
            est, real = perf['estimated'], perf['realised']
            auc['ours'].append(est['roc_auc']['estimate'] - real['roc_auc'])
            auc['no_change'].append(ref_real['roc_auc'] - real['roc_auc'])
            cover.append(est['roc_auc']['lo'] <= real['roc_auc'] <= est['roc_auc']['hi'])
            r = real['log_loss']
            ll['ours'].append(est['log_loss']['estimate'] / r - 1)
            ll['oracle'].append(cross_entropy(q, w.p) / r - 1)
            ll['no_change'].append(ref_real['log_loss'] / r - 1)
            ll['recalibrated'].append(cross_entropy(expit(a + b * logit(np.clip(w.p, 1e-6, 1 - 1e-6))), w.p) / r - 1)
        out[name] = {'windows': len(seeds), 'rows': n, 'roc_auc_error': error_summary(auc, 0.02),
                     'roc_auc_interval_coverage': round(float(np.mean(cover)), 3),
                     'log_loss_relative_error': error_summary(ll, 0.03),
                     'log_loss_relative_error_per_window': {k: [round(x, 4) for x in v] for k, v in ll.items()}}
    out['recalibration_on_reference_labels'] = {'a': round(float(a), 4), 'b': round(float(b), 4),
                                                'rows': int(held_out[1].size)}
    out['note'] = ('errors are estimate minus realised (log loss: relative); oracle = expected log loss of the '
                   'model from the generator\'s true probabilities, so its misses are label noise alone')
    return out


def bias_mechanism(pipe, n=100_000, seed=999):
    """Where the label-free log loss goes wrong: per band of days since last login, its share of customers, the
    model's mean p − true q there, and its part of the bias mean((p − q) logit p) / log loss, base vs drifted."""
    out = {}
    for name, drift in (('base', False), ('drifted', True)):
        table, truth = generate(n, seed=seed, drift=drift)
        p = np.clip(pipe.predict_proba(prepare(table, DataSettings()).X)[:, 1], 1e-15, 1 - 1e-15)
        q = truth['churn_probability'].to_numpy()
        gap, ll = (p - q) * np.log(p / (1 - p)), cross_entropy(q, p)
        days = pd.to_numeric(table['days_since_last_login'], errors='coerce').to_numpy()
        bands = {'<=30': days <= 30, '31-90': (days > 30) & (days <= 90), '>90': days > 90, 'missing': np.isnan(days)}
        out[name] = {'bias_relative': round(float(gap.mean() / ll), 4),
                     'days_since_last_login': {k: {'share': round(float(m.mean()), 4),
                                                   'mean_p_minus_q': round(float((p - q)[m].mean()), 4),
                                                   'bias_part': round(float(gap[m].sum() / n / ll), 4)}
                                               for k, m in bands.items() if m.any()}}
    out['note'] = ('the truth steps up at 30 and 90 days since the last login; the logistic model is linear in it, '
                   'so it over-predicts below 30 days, under-predicts at 31-90 and over-predicts past 90; the drift '
                   'empties the first band (which offset the others) and fills the last two')
    return out


def profit_section(pipe, schema, ref, seeds, n):
    "Coverage of the 90 % expected-profit intervals of the realised profit per customer (at the prior mean γ)."
    inside, inside_full, inside_cal, widths = [], [], [], []
    for s in seeds:
        w, _ = window(pipe, schema, n, s)
        money = assess(ref, w, DS, MS)['money']['window']
        m, c = money['per_customer'], money['per_customer_calibrated']
        real = realised_profit(w.y, w.actions, w.values, DS).mean()
        inside_cal.append(c['lo'] <= real <= c['hi'])
        inside.append(m['lo_labels'] <= real <= m['hi_labels']); inside_full.append(m['lo'] <= real <= m['hi'])
        widths.append((m['hi_labels'] - m['lo_labels'], m['hi'] - m['lo']))
    w = np.array(widths)
    return {'windows': len(seeds), 'rows': n, 'level': MS.level,
            'coverage_labels_only_interval': round(float(np.mean(inside)), 3),
            'coverage_calibrated_interval': round(float(np.mean(inside_cal)), 3),
            'reference_money_gap_per_customer': round(ref['money']['realised']['gap_per_customer'], 3),
            'coverage_full_interval_with_beta_priors': round(float(np.mean(inside_full)), 3),
            'median_width_per_customer': {'labels_only': round(float(np.median(w[:, 0])), 3),
                                          'with_beta_priors': round(float(np.median(w[:, 1])), 3)}}


def write_big_log(path, pipe, schema, n_lines, gz_files=2):
    "A prediction log of n_lines (~700 bytes each) rotated at 50 MB, its oldest `gz_files` files gzip-compressed."
    t, _ = generate(20_000, seed=7)
    d = prepare(t, DataSettings())
    p = pipe.predict_proba(d.X)[:, 1]
    dec = decide_batch(p, d.value.to_numpy(), DS, warn=False)
    feats = t[schema.features].astype(object).where(t[schema.features].notna(), None).to_dict('records')
    ts0 = '2026-12-01T08:00:00.000Z'
    lines = b''.join(to_json_line(prediction_record(
        request_id=f'{i:032x}', customer_id=t.customer_id[i], features=feats[i], churn_probability=p[i],
        tier=str(dec.tier[i]), action=str(dec.action[i]), expected_value=float(dec.expected_value[i]),
        ev_interval=(float(dec.ev_lo[i]), float(dec.ev_hi[i])), model_version='bayespilot-churn:1', latency_ms=1.2,
        model_sha256='ab' * 32, ts=pd.Timestamp(ts0).to_pydatetime())) for i in range(len(t)))
    path.parent.mkdir(parents=True, exist_ok=True)
    files, cur, size, written, r = [], open(path, 'wb'), 0, 0, 0
    while written < n_lines:                     # rotated as PredictionLog does: whole lines, a new file past 50 MB
        k = min(len(t), n_lines - written)
        block = lines if k == len(t) else b''.join(lines.splitlines(keepends=True)[:k])
        stamp = (pd.Timestamp(ts0) + pd.Timedelta(minutes=r)).strftime('%Y-%m-%dT%H:%M:%S.000Z').encode()
        if size + len(block) > 50_000_000:
            cur.close(); files.append(path.with_name(f'{path.name}.{len(files) + 1}')); os.replace(path, files[-1])
            cur, size = open(path, 'wb'), 0
        cur.write(block.replace(ts0.encode(), stamp)); size += len(block); written += k; r += 1
    cur.close()
    for q in files[:gz_files]:
        with open(q, 'rb') as f, gzip.open(f'{q}.gz', 'wb', compresslevel=1) as g: shutil.copyfileobj(f, g)
        q.unlink()
    return sum(f.stat().st_size for f in path.parent.iterdir() if f.name.startswith(path.name))


BASELINE_READER = ('4919bd35b94a4cd3ca0a931d9b77083c42b83e68', 'bayespilot/log_window.py')   # orjson in 2 processes
BASELINE_RUNNER = """
import subprocess, sys, types
import bayespilot.monitor
commit, path, root = sys.argv[1:4]
src = subprocess.run(['git', '-C', root, 'show', f'{commit}:{path}'], capture_output=True, check=True).stdout
mod = types.ModuleType('bayespilot.log_window_baseline'); mod.__package__ = 'bayespilot'
sys.modules[mod.__name__] = mod
exec(compile(src, f'{path}@{commit[:7]}', 'exec'), mod.__dict__)
bayespilot.monitor.read_window = mod.read_window
from bayespilot.cli import main
sys.exit(main(sys.argv[4:]))
"""


def monitor_command(reader, model, log, root):
    "`bayespilot monitor` on the log with today's reader, or with the baseline's (loaded from its git commit)."
    args = ['monitor', '--model', str(model), '--log', str(log), '--quiet', '--reports-dir', str(root / 'reports'),
            '--name', 'big']
    if reader == 'ours': return [sys.executable, '-m', 'bayespilot.cli', *args]
    return [sys.executable, '-c', BASELINE_RUNNER, *BASELINE_READER, str(ROOT), *args]


def timed_run(cmd):
    "Wall time, CPU time and peak memory (PSS, shared pages split, summed over the process and its workers) of cmd."
    t0, peak, cpu0 = time.perf_counter(), [0], resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    def sample():
        while proc.poll() is None:
            try: rss = sum(p.memory_full_info().pss for p in [proc, *proc.children(recursive=True)])
            except psutil.Error: rss = 0
            peak[0] = max(peak[0], rss); time.sleep(0.05)
    th = threading.Thread(target=sample); th.start()
    so, se = proc.communicate(); th.join()
    assert proc.returncode in (0, 3), se.decode()[-2000:]
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)      # the command and its (waited-for) worker processes
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return {'seconds': round(time.perf_counter() - t0, 2), 'peak_pss_mib': round(peak[0] / 2**20, 1),
            'cpu_seconds': round(cpu, 2), 'exit_code': proc.returncode,
            'load_average_1m': round(os.getloadavg()[0], 1)}, so.decode()


def medians(runs) -> dict:
    "Median wall and CPU seconds and the largest peak memory of several runs."
    return {'median_seconds': float(np.median([r['seconds'] for r in runs])),
            'median_cpu_seconds': float(np.median([r['cpu_seconds'] for r in runs])),
            'max_peak_pss_mib': max(r['peak_pss_mib'] for r in runs)}


def stage_seconds(log, ref):
    """CPU seconds of each stage of monitoring the log in one thread, today's reader and the baseline's:
    read/inflate, JSON parse, columns, join; then the checks and the report (shared by both)."""
    import types
    from bayespilot import log_window as lw
    from bayespilot.monitor_report import write_monitoring_report
    src = subprocess.run(['git', '-C', str(ROOT), 'show', '%s:%s' % BASELINE_READER], capture_output=True,
                         check=True).stdout
    old = types.ModuleType('bayespilot.log_window_baseline'); old.__package__ = 'bayespilot'
    exec(compile(src, 'baseline', 'exec'), old.__dict__)
    num = [c for c, v in ref['features'].items() if v['kind'] == 'numeric']
    cat = [c for c in ref['features'] if c not in num]
    clock, out = time.process_time, {'ours': {}, 'baseline': {}}
    def lap(d, k, t0): d[k] = round(d.get(k, 0) + clock() - t0, 2); return clock()
    snap, o = lw.snapshot_sizes(log), out['ours']
    t, parts = clock(), []
    for file, data, _ in lw.log_blocks(snap):
        t = lap(o, 'read_inflate', t)
        table = lw.read_block_table(data, num, cat); t = lap(o, 'json_parse', t)
        parts.append({'file': file, 'n_lines': table.num_rows, 'error': None} | lw.arrow_columns(table, num, cat))
        t = lap(o, 'columns', t)
    w, ev = lw.assemble(parts, snap, num, cat, None, None, None, None); t = lap(o, 'join', t)
    b, t, parts = out['baseline'], clock(), []
    for r in old.plan_ranges(snap):
        lines = old.read_range(*r).split(b'\n')[:-1]; t = lap(b, 'read_inflate', t)
        for i in range(0, len(lines), old.BATCH_LINES):
            recs, _ = old._decode(lines[i:i + old.BATCH_LINES]); t = lap(b, 'json_parse', t)
            parts.append({'range': r, 'n_lines': len(recs), 'error': None, 'line': np.arange(1, len(recs) + 1)}
                         | old._columns(recs, num, cat)); t = lap(b, 'columns', t)
    old.assemble(parts, snap, num, cat, None, None, None, None); lap(b, 'join', t)
    from bayespilot.reference import values_from_ev
    w.values = values_from_ev(w.p, w.actions, ev, DS)
    t = clock(); summary = assess(ref, w, DS, MS); t = lap(o, 'checks', t)
    with tempfile.TemporaryDirectory() as d: write_monitoring_report(summary, Path(d) / 'r')
    lap(o, 'report', t)
    b['checks'], b['report'] = o['checks'], o['report']
    for d in out.values(): d['total'] = round(sum(d.values()), 2)
    return out


def throughput_section(pipe, schema, ref, n_lines, runs, tmp):
    """Monitor a log of n_lines, `runs` times with today's reader and with the baseline's, alternating so both
    see the same machine load; size, files, median seconds, CPU and peak memory, the ratio; stages."""
    model = tmp / 'deployed_pipeline.pkl'
    save_artifact(pipe, model, {'name': 'deployed_pipeline', 'schema': schema.to_dict(), 'reference': ref,
                                'policy': DS.model_dump(mode='json'),
                                'registered_model': {'name': 'bayespilot-churn', 'version': 1, 'alias': 'champion'}})
    log = tmp / 'logs' / 'predictions.jsonl'
    t0 = time.perf_counter(); size = write_big_log(log, pipe, schema, n_lines); t_write = time.perf_counter() - t0
    files = sorted(f.name for f in log.parent.iterdir() if not f.name.endswith('.lock'))
    res, first = {'ours': [], 'baseline': []}, {}
    for _ in range(runs):
        for reader in res:
            r, stdout = timed_run(monitor_command(reader, model, log, tmp)); res[reader].append(r)
            first[reader] = stdout.splitlines()[0]
    ours, base = medians(res['ours']), medians(res['baseline'])
    return {'lines': n_lines, 'bytes': size, 'mb': round(size / 1e6, 1), 'files': len(files),
            'gzip_files': sum(f.endswith('.gz') for f in files), 'seconds_to_write_log': round(t_write, 1),
            'ours': {'reader': 'pyarrow JSON, typed schema, 8 MB blocks in 2 threads', 'runs': res['ours'], **ours},
            'baseline': {'reader': f'orjson in 2 worker processes (log_window.py at {BASELINE_READER[0][:7]})',
                         'runs': res['baseline'], **base},
            'speedup_wall': round(base['median_seconds'] / ours['median_seconds'], 2),
            'speedup_cpu': round(base['median_cpu_seconds'] / ours['median_cpu_seconds'], 2),
            'lines_per_second': round(n_lines / ours['median_seconds']),
            'goal': '1 000 000 lines in < 20 s, < 1 GiB', 'goal_met': ours['median_seconds'] < 20 and
            ours['max_peak_pss_mib'] < 1024, 'same_first_line_of_output': first['ours'] == first['baseline'],
            'first_line_of_output': first['ours'], 'stage_cpu_seconds_one_thread': stage_seconds(log, ref)}


def plot_figures(out: dict, dest: Path) -> None:
    "monitoring.png: per-window log-loss errors (ours, oracle, no change); million-line times against the baseline."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    perf, thr = out.get('performance'), out.get('throughput')
    perf = perf if perf and 'log_loss_relative_error_per_window' in perf.get('base', {}) else None
    thr = thr if thr and 'ours' in thr else None
    panels = [k for k, v in (('perf', perf), ('thr', thr)) if v]
    if not panels: return
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], panels):
        if kind == 'perf':
            colors = {'ours': 'C0', 'oracle': 'C2', 'no_change': 'C7'}
            for i, pop in enumerate(('base', 'drifted')):
                for j, (k, c) in enumerate(colors.items()):
                    e = np.array(perf[pop]['log_loss_relative_error_per_window'][k]) * 100
                    ax.scatter(np.full(e.size, i * 4 + j) + np.linspace(-0.25, 0.25, e.size), e, s=12, color=c,
                               label=k.replace('_', ' ') if i == 0 else None)
            ax.axhspan(-3, 3, color='C1', alpha=0.12, label='within 3 %')
            ax.axhline(0, color='k', lw=0.6)
            ax.set_xticks([1, 5], ['base population', '--drift population'])
            ax.set_ylabel('estimated − realised log loss (% of realised)')
            ax.set_title('Label-free log loss per 5 000-row window'); ax.legend(fontsize=8)
        else:
            names, keys = ['ours', 'baseline'], ['median_seconds', 'median_cpu_seconds']
            x = np.arange(2)
            for j, k in enumerate(keys):
                v = [thr[n][k] for n in names]
                ax.bar(x + (j - 0.5) * 0.38, v, 0.38, label=k.replace('median_', 'median ').replace('_', ' '))
            if thr['lines'] >= 1_000_000: ax.axhline(20, color='C3', ls='--', lw=1, label='goal: 20 s wall')
            ax.set_xticks(x, ['pyarrow reader (now)', 'orjson reader (before)'])
            ax.set_ylabel('seconds'); ax.legend(fontsize=8)
            ax.set_title(f"bayespilot monitor, {thr['lines']:,} log lines ({thr['mb']:.0f} MB), load "
                         f"{out['machine']['load_average_1m']}")
    fig.tight_layout(); fig.savefig(dest, dpi=110); plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='fewer windows and 100 000 log lines (a smoke run)')
    ap.add_argument('--only', nargs='*', choices=['drift', 'performance', 'profit', 'throughput'])
    a = ap.parse_args(argv)
    q = a.quick
    t0 = time.perf_counter()
    pipe, schema, ref, held = train(held_out=True)
    out, tmp = {}, Path(tempfile.mkdtemp(prefix='bench-drift-'))
    try:
        todo = a.only or ['drift', 'performance', 'profit', 'throughput']
        if 'drift' in todo: out['drift'] = drift_section(pipe, schema, ref, range(100, 104 if q else 120), 5000)
        if 'performance' in todo:
            out['performance'] = performance_section(pipe, schema, ref, range(200, 204 if q else 220), 5000, held)
            out['log_loss_bias_mechanism'] = bias_mechanism(pipe, 20_000 if q else 100_000)
        if 'profit' in todo: out['profit'] = profit_section(pipe, schema, ref, range(300, 310 if q else 350), 5000)
        if 'throughput' in todo:
            out['throughput'] = throughput_section(pipe, schema, ref, 100_000 if q else 1_000_000, 1 if q else 3, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out['model'] = ('Stage 1 logistic regression, 20 000 generated rows (seed 42); reference: 16 000 train + 4 000 '
                    'test rows')
    out['machine'] = dict(cpus=os.cpu_count(), load_average_1m=round(os.getloadavg()[0], 1),
                          filesystem_dir=portable(tempfile.gettempdir()))
    out['seconds'] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=2))
    dest = ROOT / 'reports' / 'bench' / ('monitoring_quick.json' if q else 'monitoring.json')
    prev = json.loads(dest.read_text()) if dest.exists() else {}
    prev['monitor'] = {**prev.get('monitor', {}), **out} if a.only else out
    dest.write_text(json.dumps(prev, indent=2) + '\n')
    plot_figures(prev['monitor'], dest.with_suffix('.png'))
    return 0


if __name__ == '__main__': sys.exit(main())

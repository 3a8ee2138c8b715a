"""Collect every reports/bench/stage2_quality*.json (the default run and the --tag experiments) into one table:
Stage 2 variant and parameters per table, its ROC AUC and log loss, and the goal verdicts.

Writes reports/bench/stage2_experiments.md. Usage: python bench/bench_stage2_summary.py
"""
import argparse, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rows(path):
    "One summary row per table of a stage2_quality report that has a Stage 2 result."
    r = json.loads(path.read_text())
    setup = r.get('variant', 'default') + (f" {json.dumps(r['stage2_params'])}" if r.get('stage2_params') else '')
    code = r.get('provenance', {}).get('commit', '?')
    for table, t in r['tables'].items():
        s2 = t.get('models', {}).get('stage2')
        if not s2 or 'error' in s2: continue
        verdicts = ' · '.join(f"{'PASS' if g['passed'] else 'FAIL'} {g['goal'].split(' (')[0].split(' x ')[0]}" for g in r['goals'] if g['table'] == table)
        yield f"| {path.stem.removeprefix('stage2_quality') or '(default run)'} | {setup} | {code} | {table} | {s2['roc_auc']:.4f} | {s2['log_loss']:.4f} | {verdicts} |"


def main(argv=None):
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    out = ROOT / 'reports' / 'bench'
    lines = ['# Stage 2 benchmark: default run and experiments', '',
             'Same seeded 5-fold stratified CV for every row; plain-pipeline baselines in stage2_quality.md. '
             'Experiments reuse those baselines (--plain-from).', '',
             '| report | Stage 2 variant / params | commit | table | ROC AUC | log loss | goals |', '|---|---|---|---|---|---|---|']
    for p in sorted(out.glob('stage2_quality*.json')):
        if '_quick' not in p.stem: lines += list(rows(p))
    (out / 'stage2_experiments.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__': sys.exit(main())

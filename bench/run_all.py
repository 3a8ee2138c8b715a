"""Run every benchmark in bench/ and collect their figures in reports/bench/summary.md.

Each bench script writes its own JSON (and PNG) under reports/bench/; this runner only sequences them and
prints a summary. Usage: python bench/run_all.py [--only NAME ...] [--quick]
"""
import argparse, json, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ['decision', 'monitoring', 'drift', 'stage2', 'serving', 'score', 'update', 'holdout', 'feedback', 'explain', 'reasons', 'walk_cost']

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--only', nargs='*', choices=BENCHES, help='run only these benchmarks (default: all)')
    ap.add_argument('--quick', action='store_true', help='smaller sizes and fewer repeats (a smoke run, not for figures)')
    a = ap.parse_args(argv)
    out = ROOT/'reports'/'bench'; out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in a.only or BENCHES:
        script = ROOT/'bench'/f'bench_{name}.py'
        if not script.exists(): print(f'-- {name}: {script.name} not found, skipped'); continue
        print(f'== {name} ==', flush=True); t0 = time.perf_counter()
        quick = ['--quick'] if a.quick and '--quick' in script.read_text() else []
        rc = subprocess.call([sys.executable, str(script), *quick], cwd=ROOT)
        print(f'-- {name}: exit {rc} in {time.perf_counter() - t0:.0f} s', flush=True)
        if rc: failed.append(name)
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())

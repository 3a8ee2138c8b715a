"""The layout rules of issue 9, checked from the source (fast, no server).

- no notebook in nbs/ imports a module exported (`#| default_exp`) by a later-numbered notebook;
- no private (underscore) name crosses a module boundary: not in exported code, notebooks, tests or benchmarks;
  no private mlflow attribute either (tests isolate MLflow through `tracking.reset_mlflow`);
- exported code: no line over 120 characters, no module over 450 lines (the generated `_modidx.py` aside);
- the runtime package imports neither nbdev nor fastcore (nor execnb): they are development tools;
- committed benchmark figures under reports/bench/ hold no absolute paths.

Each rule is a function of a project root returning the offences as `file:line: what` strings (empty = clean); the
`test_*_can_fail` tests plant a violation in a scratch project and check that the rule names its file and line.
"""
import ast, json, re, struct, tempfile, zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = 'bayespilot'
MAX_LINE, MAX_LINES = 120, 450
GENERATED = {'_modidx.py'}                     # written by nbdev_export: exempt from the size rules
DEV_ONLY = {'nbdev', 'fastcore', 'execnb'}     # development tools, not runtime requirements
DEFAULT_EXP = re.compile(r'^\s*#\s*\|\s*default_exp\s+([\w.]+)', re.M)
NB_NUMBER = re.compile(r'^(\d+)([a-z]*)_')


# ---- reading the source ----

def code_cells(nb: Path) -> list[tuple[int, str]]:
    "(cell index, source) of every code cell of notebook `nb`."
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    return [(i, ''.join(c['source']) if isinstance(c['source'], list) else c['source'])
            for i, c in enumerate(cells) if c.get('cell_type') == 'code']


def parse(src: str):
    "The AST of `src` with IPython magics and shell lines blanked (line numbers kept); None if it is not Python."
    lines = ['' if l.lstrip().startswith(('%', '!', '?')) else l for l in src.splitlines()]
    try: return ast.parse('\n'.join(lines))
    except SyntaxError: return None


def package_imports(tree, module: str | None = None) -> list[tuple[int, str, list[str]]]:
    """(line, imported bayespilot module, imported names) of every import of the package in `tree`; relative imports
    resolve against the package (`module` is the importing module, for `from . import x`)."""
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name.split('.', 1)[1], []) for a in n.names if a.name.startswith(PKG + '.')]
        elif isinstance(n, ast.ImportFrom):
            names = [a.name for a in n.names]
            if n.level == 0 and n.module == PKG or n.level and not n.module:
                out += [(n.lineno, name, []) for name in names]      # `from bayespilot import x`: x is a module
            elif n.level == 0 and (n.module or '').startswith(PKG + '.'):
                out.append((n.lineno, n.module[len(PKG) + 1:], names))
            elif n.level: out.append((n.lineno, n.module, names))
    return out


def is_private(name: str) -> bool:
    "A leading underscore, dunders (`__version__`) aside."
    return name.startswith('_') and not (name.startswith('__') and name.endswith('__'))


def bindings(trees) -> tuple[dict, dict]:
    """Names bound to modules by the imports in `trees` (a notebook's cells share them): {name: bayespilot module}
    and {name: dotted mlflow module}; `mlflow` always means the package."""
    pkg, ml = {}, {'mlflow': 'mlflow'}
    for n in (n for t in trees for n in ast.walk(t)):
        if isinstance(n, ast.Import):
            for a in n.names:
                if a.name.startswith(PKG + '.'): pkg[a.asname or a.name] = a.name[len(PKG) + 1:]
                if a.name.split('.')[0] == 'mlflow' and a.asname: ml[a.asname] = a.name
        elif isinstance(n, ast.ImportFrom) and (n.level == 0 and n.module == PKG or n.level and not n.module):
            pkg |= {a.asname or a.name: a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and (n.module or '').split('.')[0] == 'mlflow':
            ml |= {a.asname or a.name: f'{n.module}.{a.name}' for a in n.names}
    return pkg, ml


def private_uses(tree, own: set[str], pkg: dict) -> list[tuple[int, str]]:
    """(line, dotted name) of private names taken from a bayespilot module not in `own`: imported
    (`from bayespilot.x import _y`) or as an attribute of a module bound in `pkg` (`x._y`, `bayespilot.x._y`)."""
    found = [(line, f'{mod}.{n}') for line, mod, names in package_imports(tree) for n in names
             if mod not in own and is_private(n)]
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and is_private(n.attr):
            mod = pkg.get(dotted(n.value))
            if mod is not None and mod not in own: found.append((n.lineno, f'{mod}.{n.attr}'))
    return sorted(set(found))


def mlflow_privates(tree, ml: dict) -> list[tuple[int, str]]:
    "(line, dotted name) of private mlflow names imported or reached as attributes (`mlflow.tracking.fluent._x`)."
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found += [(n.lineno, a.name) for a in n.names
                      if a.name.split('.')[0] == 'mlflow' and any(map(is_private, a.name.split('.')))]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and (n.module or '').split('.')[0] == 'mlflow':
            found += [(n.lineno, f'{n.module}.{a.name}') for a in n.names
                      if any(map(is_private, [*n.module.split('.'), a.name]))]
        elif isinstance(n, ast.Attribute) and is_private(n.attr) and (name := dotted(n.value)):
            head, _, rest = name.partition('.')
            if head in ml: found.append((n.lineno, '.'.join(filter(None, [ml[head], rest, n.attr]))))
    return sorted(set(found))


def dotted(node) -> str | None:
    "`a.b.c` for a chain of attribute accesses on a name, else None."
    parts = []
    while isinstance(node, ast.Attribute): parts.append(node.attr); node = node.value
    return '.'.join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def notebooks(root: Path) -> dict[Path, list[str]]:
    "Every notebook of nbs/ (checkpoints aside) with the modules it exports (`#| default_exp`)."
    return {nb: [m for _, src in code_cells(nb) for m in DEFAULT_EXP.findall(src)]
            for nb in sorted((root/'nbs').rglob('*.ipynb')) if '.ipynb_checkpoints' not in nb.parts}


def number(nb: Path):
    "Reading-order key of a numbered notebook (`06` < `06a` < `07`); None for unnumbered ones (index.ipynb)."
    m = NB_NUMBER.match(nb.name)
    return (int(m.group(1)), m.group(2)) if m else None


def modules(root: Path) -> list[Path]:
    "The exported package's modules."
    return sorted((root/PKG).glob('*.py'))


# ---- the rules: each returns `file:line: what` for every offence ----

def later_imports(root: Path) -> list[str]:
    "A numbered notebook importing a module that a later-numbered notebook exports."
    nbs = notebooks(root)
    owner = {m: nb for nb, ms in nbs.items() for m in ms}
    out = []
    for nb, _ in nbs.items():
        if number(nb) is None: continue                    # the overview (index.ipynb) may show every module
        for i, src in code_cells(nb):
            tree = parse(src)
            for line, mod, _ in package_imports(tree) if tree else []:
                exp = owner.get(mod)
                if exp is not None and number(exp) is not None and number(exp) > number(nb):
                    out.append(f'{nb.relative_to(root)} cell {i} line {line}: imports {PKG}.{mod}, '
                               f'exported by the later notebook {exp.relative_to(root)}')
    return out


def sources(root: Path) -> list[tuple[str, object, set[str], tuple[dict, dict]]]:
    """(where, AST, modules it owns, name bindings) of every exported module, notebook code cell, test and bench
    script; `where` is a format string taking the line number; a notebook's cells share the notebook's bindings."""
    out = []
    for f in [*(f for f in modules(root) if f.name not in GENERATED),
              *sorted([*(root/'tests').glob('*.py'), *(root/'bench').glob('*.py')])]:
        tree = ast.parse(f.read_text(encoding='utf-8'))
        out.append((f'{f.relative_to(root)}:{{}}', tree, {f.stem} if f.parent.name == PKG else set(), bindings([tree])))
    for nb, own in notebooks(root).items():
        cells = [(i, tree) for i, src in code_cells(nb) if (tree := parse(src)) is not None]
        bound = bindings([t for _, t in cells])
        out += [(f'{nb.relative_to(root)} cell {i} line {{}}', tree, set(own), bound) for i, tree in cells]
    return out


def private_imports(root: Path) -> list[str]:
    "A private name of a bayespilot module used in another module, a notebook that does not export it, a test, a bench."
    return [f'{where.format(line)}: private name {PKG}.{name} of another module'
            for where, tree, own, (pkg, _) in sources(root) for line, name in private_uses(tree, own, pkg)]


def private_mlflow(root: Path) -> list[str]:
    "A private mlflow attribute (test isolation goes through tracking.reset_mlflow instead)."
    return [f'{where.format(line)}: private mlflow name {name}'
            for where, tree, _, (_, ml) in sources(root) for line, name in mlflow_privates(tree, ml)]


def generated_lines(src: str) -> set[int]:
    "Line numbers of the `__all__` list nbdev_export writes (wrapped at 120 before `__all__ = ` is put in front)."
    return {i for n in ast.parse(src).body if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == '__all__' for t in n.targets)
            for i in range(n.lineno, n.end_lineno + 1)}


def long_lines(root: Path) -> list[str]:
    """A line of exported code over MAX_LINE characters; the module docstring (the notebook's `> summary`) counts,
    nbdev's generated `__all__` does not."""
    out = []
    for f in modules(root):
        if f.name in GENERATED: continue
        src = f.read_text(encoding='utf-8')
        skip = generated_lines(src)
        out += [f'{f.relative_to(root)}:{i}: {len(l)} characters (at most {MAX_LINE})'
                for i, l in enumerate(src.splitlines(), 1) if len(l) > MAX_LINE and i not in skip]
    return out


def long_modules(root: Path) -> list[str]:
    "An exported module over MAX_LINES lines."
    out = []
    for f in modules(root):
        n = len(f.read_text(encoding='utf-8').splitlines())
        if f.name not in GENERATED and n > MAX_LINES:
            out.append(f'{f.relative_to(root)}:{n}: {n} lines (at most {MAX_LINES}); split it into chapters')
    return out


def dev_imports(root: Path) -> list[str]:
    "An import of nbdev / fastcore / execnb anywhere in the runtime package (also inside functions, also dynamic)."
    out = []
    for f in modules(root):
        for n in ast.walk(ast.parse(f.read_text(encoding='utf-8'))):
            names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                     [n.module or ''] if isinstance(n, ast.ImportFrom) and n.level == 0 else
                     [a.value for a in n.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                     if isinstance(n, ast.Call) and dotted(n.func) in ('__import__', 'importlib.import_module') else [])
            out += [f'{f.relative_to(root)}:{n.lineno}: imports {name} (a development tool, not a runtime requirement)'
                    for name in names if name.split('.')[0] in DEV_ONLY]
    return out


ROOTS = 'work|tmp|home|Users|root|var|private|mnt|opt|usr|srv|scratch|data|media|nfs|etc|run|builds|github|workspace'
ABS_PATH = re.compile(rf'(?<![\w.:/<>$~-])/(?:{ROOTS})(?![\w.-])[^\s"\'`,;)\]]*'   # /work/..., /tmp, /home/...
                      r'|(?<![\w/])~/[^\s"\'`,;)\]]+'                                  # ~/...
                      r'|(?<![\w])[A-Za-z]:(?:\\\\|\\|/)(?=[\w.])[^\s"\'`,;)\]]*')     # C:\..., C:/...
TEXT = {'.json', '.md', '.csv', '.txt', '.html', '.svg', '.toml', '.yaml', '.yml', '.log'}


def machine_paths() -> list[str]:
    "This machine's project, home and temp folders: absolute wherever they sit."
    here = {str(REPO), str(REPO.parent), str(Path.home()), tempfile.gettempdir()}
    return sorted(p for p in here if p not in ('', '/'))


def png_text(data: bytes) -> str:
    "The text chunks (tEXt, zTXt, iTXt) of a PNG file, where a plotting library may have written a path."
    out, i = [], 8
    while i + 8 <= len(data):
        n, kind = struct.unpack('>I4s', data[i:i + 8]); body = data[i + 8:i + 8 + n]; i += 12 + n
        if kind == b'tEXt': out.append(body.decode('latin-1'))
        elif kind == b'zTXt': out.append(zlib.decompress(body[body.index(b'\0') + 2:]).decode('latin-1'))
        elif kind == b'iTXt': out.append(body.decode('utf-8', 'replace'))
    return '\n'.join(out)


def absolute_paths(root: Path, machine: list[str] | None = None) -> list[str]:
    "An absolute path (of this or any machine) in a file under reports/bench/."
    machine = machine_paths() if machine is None else machine
    out = []
    for f in sorted(p for p in (root/'reports'/'bench').rglob('*') if p.is_file()):
        text = (f.read_text(encoding='utf-8', errors='replace') if f.suffix in TEXT else
                png_text(f.read_bytes()) if f.suffix == '.png' else '')
        for i, line in enumerate(text.splitlines(), 1):
            hits = ABS_PATH.findall(line)
            hits += [p for p in machine if p in line and not any(p in h for h in hits)]
            out += [f'{f.relative_to(root)}:{i}: absolute path {h!r}' for h in dict.fromkeys(hits)]
    return out


# ---- the project obeys them ----

def clean(offences: list[str]):
    "Fail with every offence on its own line."
    assert not offences, f'{len(offences)} offence(s):\n' + '\n'.join(offences)


def test_no_notebook_imports_a_later_one():
    assert len(notebooks(REPO)) > 1, 'no notebooks found in nbs/'
    clean(later_imports(REPO))


def test_no_private_name_crosses_a_module_boundary():
    clean(private_imports(REPO))


def test_no_private_mlflow_name():
    clean(private_mlflow(REPO))


def test_exported_lines_are_at_most_120_characters():
    clean(long_lines(REPO))


def test_no_module_over_450_lines():
    clean(long_modules(REPO))


def test_runtime_package_needs_no_nbdev_or_fastcore():
    assert modules(REPO), f'no modules found in {PKG}/'
    clean(dev_imports(REPO))


def test_committed_benchmark_files_hold_no_absolute_paths():
    clean(absolute_paths(REPO))


# ---- every rule can fail: plant a violation in a scratch project, the rule names its file and line ----

def notebook(path: Path, *cells: str):
    "Write a minimal nbformat-4 notebook of code cells."
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': f'c{i}', 'metadata': {}, 'outputs': [],
                     'source': src} for i, src in enumerate(cells)],
          'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb))


def write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True); path.write_text(text)


@pytest.fixture
def project(tmp_path):
    "A clean two-notebook project: 00_a exports `a`, 01_b exports `b` and imports `a`."
    notebook(tmp_path/'nbs'/'00_a.ipynb', '#| default_exp a', '#| export\ndef f(): return 1\ndef _g(): return 2')
    notebook(tmp_path/'nbs'/'01_b.ipynb', '#| default_exp b', '#| export\nfrom bayespilot.a import f', '%time f()')
    notebook(tmp_path/'nbs'/'index.ipynb', 'from bayespilot.b import *')
    write(tmp_path/PKG/'a.py', 'def f(): return 1\ndef _g(): return 2\n')
    write(tmp_path/PKG/'b.py', 'from .a import f\nimport numpy as np\n')
    write(tmp_path/'tests'/'test_x.py', 'from bayespilot.a import f\n')
    write(tmp_path/'reports'/'bench'/'x.json', json.dumps({'source': '../shared/data/t.csv', 'uri': 'models:/m@c',
                                                           'cmd': '--data <tmp>/c.csv sqlite:///<run dir>/mlflow.db'}))
    for rule in (later_imports, private_imports, private_mlflow, long_lines, long_modules, dev_imports):
        assert rule(tmp_path) == [], rule.__name__
    assert absolute_paths(tmp_path, machine=[]) == []
    return tmp_path


def test_later_import_can_fail(project):
    notebook(project/'nbs'/'00_a.ipynb', '#| default_exp a', 'x = 1\n\nimport bayespilot.b as b',
             'from bayespilot import b')
    assert later_imports(project) == [
        'nbs/00_a.ipynb cell 1 line 3: imports bayespilot.b, exported by the later notebook nbs/01_b.ipynb',
        'nbs/00_a.ipynb cell 2 line 1: imports bayespilot.b, exported by the later notebook nbs/01_b.ipynb']


def test_later_import_follows_the_letter_suffix(project):
    notebook(project/'nbs'/'01a_case.ipynb', 'from bayespilot.b import f')          # 01a reads after 01: allowed
    notebook(project/'nbs'/'00a_case.ipynb', '!ls', 'from bayespilot.b import f')   # 00a reads before 01: not
    assert later_imports(project) == ['nbs/00a_case.ipynb cell 1 line 1: imports bayespilot.b, '
                                      'exported by the later notebook nbs/01_b.ipynb']


def test_private_import_can_fail(project):
    write(project/PKG/'b.py', 'from .a import f, _g\nfrom bayespilot import a\n\ndef h(): return a._g()\n')
    notebook(project/'nbs'/'01_b.ipynb', '#| default_exp b', 'from bayespilot.a import _g')
    notebook(project/'nbs'/'00_a.ipynb', '#| default_exp a', 'from bayespilot.a import _g')   # its own: allowed
    write(project/'bench'/'bench_x.py', 'import bayespilot.a\nbayespilot.a._g()\n')
    assert private_imports(project) == [
        'bayespilot/b.py:1: private name bayespilot.a._g of another module',
        'bayespilot/b.py:4: private name bayespilot.a._g of another module',
        'bench/bench_x.py:2: private name bayespilot.a._g of another module',
        'nbs/01_b.ipynb cell 1 line 1: private name bayespilot.a._g of another module']


def test_private_mlflow_can_fail(project):
    notebook(project/'nbs'/'01_b.ipynb', '#| default_exp b', 'mlflow.tracking.fluent._active_experiment_id = None',
             'from mlflow.tracking import fluent as fl\nfl._active_run_stack.clear()\nmlflow.set_experiment("x")')
    write(project/PKG/'b.py', 'from mlflow.tracking.fluent import _active_experiment_id\n')
    assert private_mlflow(project) == [
        'bayespilot/b.py:1: private mlflow name mlflow.tracking.fluent._active_experiment_id',
        'nbs/01_b.ipynb cell 1 line 1: private mlflow name mlflow.tracking.fluent._active_experiment_id',
        'nbs/01_b.ipynb cell 2 line 2: private mlflow name mlflow.tracking.fluent._active_run_stack']


def test_long_line_can_fail(project):
    names = ', '.join(f"'name_{i:03}'" for i in range(30))
    write(project/PKG/'b.py', f'x = 1\ny = "' + 'z' * 120 + f'"\n__all__ = [{names[:118]}\n           {names[118:]}]\n')
    write(project/PKG/'_modidx.py', 'd = "' + 'z' * 200 + '"\n')                       # generated: exempt
    assert long_lines(project) == ['bayespilot/b.py:2: 126 characters (at most 120)']


def test_long_module_can_fail(project):
    write(project/PKG/'b.py', 'x = 1\n' * 451)
    write(project/PKG/'_modidx.py', 'x = 1\n' * 1000)
    assert long_modules(project) == ['bayespilot/b.py:451: 451 lines (at most 450); split it into chapters']


def test_dev_import_can_fail(project):
    write(project/PKG/'b.py', 'import numpy\nfrom fastcore.basics import patch\n\ndef f():\n    import nbdev\n'
                              '    return __import__("execnb.nbio")\n')
    assert dev_imports(project) == [
        'bayespilot/b.py:2: imports fastcore.basics (a development tool, not a runtime requirement)',
        'bayespilot/b.py:5: imports nbdev (a development tool, not a runtime requirement)',
        'bayespilot/b.py:6: imports execnb.nbio (a development tool, not a runtime requirement)']


def test_absolute_path_can_fail(project):
    write(project/'reports'/'bench'/'x.json', '{\n  "artifact": "/work/main/models/a.pkl",\n  "dir": "/tmp",\n'
                                              '  "cmd": "train --data /tmp/bench_x/c.csv",\n'
                                              '  "w": "C:\\\\Users\\\\me"\n}\n')
    write(project/'reports'/'bench'/'y.md', 'ran in /opt2/me/scratch\n')             # a machine path on no usual root
    assert absolute_paths(project, machine=['/opt2/me']) == [
        "reports/bench/x.json:2: absolute path '/work/main/models/a.pkl'",
        "reports/bench/x.json:3: absolute path '/tmp'",
        "reports/bench/x.json:4: absolute path '/tmp/bench_x/c.csv'",
        "reports/bench/x.json:5: absolute path 'C:\\\\\\\\Users\\\\\\\\me'",
        "reports/bench/y.md:1: absolute path '/opt2/me'"]


def test_absolute_path_in_a_png_can_fail(project):
    chunk = lambda kind, body: struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    png = b'\x89PNG\r\n\x1a\n' + chunk(b'tEXt', b'Source\0/home/me/plot.py') + chunk(b'IEND', b'')
    write(project/'reports'/'bench'/'p.png', ''); (project/'reports'/'bench'/'p.png').write_bytes(png)
    assert absolute_paths(project, machine=[]) == ["reports/bench/p.png:1: absolute path '/home/me/plot.py'"]

"Paths as the committed benchmark figures show them: relative to the project, never this machine's absolute paths."
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def portable(path, tmp=None) -> str:
    """`path` relative to the project (`models/...`, `../shared/data/...`), `<tmp>/...` inside `tmp` (a run's scratch
    folder) or the system temp folder, else `<abs>/<file name>`; a relative path is returned as it is."""
    p = Path(path)
    if not p.is_absolute(): return p.as_posix()
    p = p.resolve()
    for base, label in ((tmp, '<tmp>'), (ROOT, '.'), (ROOT.parent, '..'), (tempfile.gettempdir(), '<tmp>')):
        if base is None: continue
        base = Path(base).resolve()
        if label == '..' and base == base.parent: continue          # the project sits at the root of the file system
        if p == base or base in p.parents:
            rel = p.relative_to(base).as_posix()
            return rel if label == '.' else label if rel == '.' else f'{label}/{rel}'
    return f'<abs>/{p.name}'

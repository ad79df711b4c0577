"""Folders written whole: a reader, or a rerun after a kill, sees the old folder or the new one, never half.

Used for the bundled agents, the training checkpoints and `compress`'s variant folders.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _old(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.old")


def recover_folder(folder: Path) -> None:
    """Put back the previous folder when a kill fell between `atomic_folder`'s two renames."""
    folder = Path(folder)
    if not folder.exists() and _old(folder).exists():
        os.replace(_old(folder), folder)


@contextmanager
def atomic_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty scratch folder beside `folder`; when the block ends without error it replaces
    `folder` (two renames), otherwise it is removed and `folder` is left as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(folder)
    for stale in folder.parent.glob(f".{folder.name}.partial-*"):  # left by a killed writer
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _old(folder)
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)

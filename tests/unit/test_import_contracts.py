"""Layer contracts (import-linter, configured in pyproject.toml): the domain core
imports nothing that does I/O."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pingan.settings import PROJECT_ROOT


def test_the_domain_core_imports_no_shell() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The domain core does no I/O" in done.stdout
    assert "1 kept, 0 broken" in done.stdout

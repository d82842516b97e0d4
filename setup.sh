#!/usr/bin/env bash
# Create .venv (Python 3.10: Lava needs it) with the pinned, tested dependency set and
# install neuro-erc into it in editable mode. Safe to re-run: it reinstalls only when
# constraints.txt or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")"

find_python310() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    if command -v pyenv >/dev/null 2>&1 && pyenv versions --bare 2>/dev/null | grep -qx '3.10.13'; then
        echo "$(pyenv root)/versions/3.10.13/bin/python3.10"; return
    fi
    if command -v python3.10 >/dev/null 2>&1; then command -v python3.10; return; fi
    echo "neuro-erc setup: Python 3.10 not found (lava-nc/lava-dl need 3.10); set PYTHON=/path/to/python3.10" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    "$(find_python310)" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
# setuptools announces, on every editable install of a package-dir mapping like ours
# (export/ installs as neuro_erc.export), that such installs use an import hook: an
# information-only notice, silenced by its message so real warnings still show.
export PYTHONWARNINGS="ignore:Editable installation"
stamp=.venv/.neuro-erc-installed
want=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[lava,features,test,distributed]"
    echo "$want" > "$stamp"
else
    .venv/bin/python -m pip install --quiet --no-deps -e .
fi

#!/usr/bin/env bash
# Create or reuse the project's virtual environment and install what mematte_d2 needs.
#
# Re-installs only when the requirement set changed: a stamp file in the venv holds a
# hash of requirements.txt, setup.py, this script and the routing-ablations project's
# pyproject.toml. detectron2 comes from, in order:
#   1. an importable detectron2 already in the venv;
#   2. $DETECTRON2_SOURCE (a git URL or a local checkout), pip-installed without build
#      isolation so that it compiles against the venv's torch;
#   3. the registry package sal-detectron2==0.7.2 (detectron2 0.7.2, a cp310 wheel whose
#      pure-Python part works on 3.11; its compiled ops do not load, matting needs none).
# Usage: VENV=.venv PYTHON=python3 bash tools/setup_env.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.mematte_d2_requirements.sha256"
D2_WHEEL="sal-detectron2==0.7.2"

ABLATIONS="$ROOT/projects/routing_ablations"
want_hash="$(cat "$ROOT/requirements.txt" "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" \
    "$ABLATIONS/pyproject.toml" | sha256sum | cut -d' ' -f1)"

has_detectron2() {
    "$VENV/bin/python" -c "import detectron2.config, detectron2.engine" >/dev/null 2>&1
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_hash" ]] && has_detectron2; then
    exit 0
fi

echo "[setup_env] installing into $VENV (requirement set changed or first run)"
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# Some machines' pip config lists local index folders that do not exist; hide that noise.
exec 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"${PIP[@]}" install -r "$ROOT/requirements.txt"

if has_detectron2; then
    echo "[setup_env] detectron2: keeping the importable install"
elif [[ -n "${DETECTRON2_SOURCE:-}" ]]; then
    src="$DETECTRON2_SOURCE"
    if [[ "$src" == http*://* || "$src" == git@* ]]; then
        src="git+$src"
    fi
    echo "[setup_env] detectron2: building from DETECTRON2_SOURCE=$DETECTRON2_SOURCE"
    "${PIP[@]}" install --no-build-isolation "$src"
else
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "[setup_env] detectron2: installing registry package $D2_WHEEL into $site"
    "${PIP[@]}" install --no-deps --only-binary=:all: --python-version 3.10 \
        --upgrade --target "$site" "$D2_WHEEL"
fi
has_detectron2 || { echo "[setup_env] detectron2 is still not importable" >&2; exit 1; }

"${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT"
# The routing-ablations project is a package of its own; its configs and tests import it.
"${PIP[@]}" install --no-deps --no-build-isolation -e "$ABLATIONS"
echo "$want_hash" > "$STAMP"
echo "[setup_env] done"

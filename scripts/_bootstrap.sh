# Sourced by the scripts in this folder: puts a uv on PATH, installing it if needed.
# Needs only python3 (3.11+); uv then brings the locked environments.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x "$ROOT/.uv-bootstrap/bin/uv" ]; then
    echo "==> installing uv into .uv-bootstrap/ (one time)" >&2
    python3 -m venv "$ROOT/.uv-bootstrap"
    "$ROOT/.uv-bootstrap/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  export PATH="$ROOT/.uv-bootstrap/bin:$PATH"
fi
export UV_PYTHON_PREFERENCE="${UV_PYTHON_PREFERENCE:-only-system}"
# Trust the operating system's certificate store (corporate proxies add their CA there).
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"

# sync_env NAME: create or update .venv-NAME with the locked dependencies of that generation,
# every extra but the one that belongs to the other generation ([openai] needs 1.x, [legacy] pins
# the legacy framework).
sync_env() {
  local other_extra
  if [ "$1" = legacy ]; then other_extra=openai; else other_extra=legacy; fi
  UV_PROJECT_ENVIRONMENT="$ROOT/.venv-$1" uv sync --locked --quiet --group "$1" --all-extras --no-extra "$other_extra"
}

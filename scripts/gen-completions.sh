#!/bin/sh
# Regenerates the checked-in shell completions and man page from the clap definition.
# Run after changing any flag or command; tests/e2e/completions.rs fails until you do.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet
flux=target/debug/flux
$flux completions bash > completions/flux.bash
$flux completions zsh > completions/_flux
$flux completions fish > completions/flux.fish
$flux completions powershell > completions/_flux.ps1
$flux completions elvish > completions/flux.elv
$flux man > docs/flux.1
echo "updated completions/ and docs/flux.1"

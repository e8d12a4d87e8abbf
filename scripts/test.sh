#!/usr/bin/env bash
# Runs snap's whole test suite on a fresh Debian machine: installs what the
# tests need (PostgreSQL for dump tests, python3-venv for the loopback S3
# server, fuse3 for the mount tests, openssh-server for the sftp tests),
# then `cargo test`. Tests that need a server start it themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v curl >/dev/null || need+=(curl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v fusermount3 >/dev/null || need+=(fuse3)            # snap mount's tests
[ -x /usr/sbin/sshd ] || need+=(openssh-server)                # sftp:// tests (sshd, ssh-keygen, ssh-agent)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The S3 tests start a loopback S3 server (moto, in a venv) through
# scripts/s3-server.sh; the PostgreSQL tests start a private server.
# The failpoints feature (test builds only) lets the crash and interleaving
# tests stop snap at chosen steps; see src/failpoint.rs.
cargo test --all-targets --features failpoints "$@"

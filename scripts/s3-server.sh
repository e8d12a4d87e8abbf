#!/usr/bin/env bash
# Starts a loopback S3 server (moto, single-threaded) for snap's tests and
# benchmarks, creates a bucket, and prints the environment it needs.
#
#   eval "$(scripts/s3-server.sh)"        # exports AWS_* / SNAP_TEST_S3_* and S3_PID
#   scripts/s3-server.sh --foreground     # same, but stays in the foreground
#
# Variables (all optional): S3_VENV (venv dir, default $XDG_CACHE_HOME/snap-s3-venv),
# S3_PORT (default: a free port), S3_BUCKET (default snaptest), S3_LOG.
# Needs python3 (>= 3.9) with venv, and network access to PyPI the first time.
# moto accepts any credentials, keeps objects in RAM and is slow: use it to
# check behaviour and count requests, not to time throughput.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${S3_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/snap-s3-venv}
BUCKET=${S3_BUCKET:-snaptest}
FOREGROUND=0
[ "${1:-}" = "--foreground" ] && FOREGROUND=1

if ! "$VENV/bin/python" -c 'import moto, flask, flask_cors' 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    'moto[s3]==5.2.5' 'flask==3.1.3' 'flask-cors==6.0.5' >&2
fi

if [ -z "${S3_PORT:-}" ]; then
  S3_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
LOG=${S3_LOG:-${TMPDIR:-/tmp}/snap-moto-$S3_PORT.log}
ENDPOINT="http://127.0.0.1:$S3_PORT"

"$VENV/bin/python" "$HERE/moto_serial.py" 127.0.0.1 "$S3_PORT" >"$LOG" 2>&1 &
S3_PID=$!
up=0
for _ in $(seq 1 300); do
  if curl -fsS -o /dev/null "$ENDPOINT/" 2>/dev/null; then up=1; break; fi
  kill -0 "$S3_PID" 2>/dev/null || break
  sleep 0.1
done
if [ "$up" != 1 ]; then
  echo "s3-server.sh: moto did not start; log $LOG:" >&2
  cat "$LOG" >&2 || true
  kill "$S3_PID" 2>/dev/null || true
  exit 1
fi
# With S3_WATCH_PID, the server stops when that process (a test run) exits.
if [ -n "${S3_WATCH_PID:-}" ]; then
  ( while kill -0 "$S3_WATCH_PID" 2>/dev/null && kill -0 "$S3_PID" 2>/dev/null; do sleep 1; done
    kill "$S3_PID" 2>/dev/null ) >/dev/null 2>&1 </dev/null &
fi
# moto accepts an unsigned CreateBucket.
curl -fsS -X PUT -o /dev/null "$ENDPOINT/$BUCKET"

cat <<VARS
export S3_PID=$S3_PID
export SNAP_TEST_S3_ENDPOINT=$ENDPOINT
export SNAP_TEST_S3_BUCKET=$BUCKET
export AWS_ENDPOINT_URL=$ENDPOINT
export AWS_ALLOW_HTTP=true
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
VARS
echo "moto S3 on $ENDPOINT (pid $S3_PID, bucket $BUCKET, log $LOG)" >&2
if [ "$FOREGROUND" = 1 ]; then
  trap 'kill $S3_PID 2>/dev/null' EXIT INT TERM
  wait "$S3_PID"
fi

#!/usr/bin/env bash
# `make demo`: a real deployment on the embedded default, start to finish, leaving nothing running.
#   1. start the packaged nats-server (`cs nats serve`) on a free loopback port
#   2. create the event stream (`cs nats setup`)
#   3. `cs up` examples/hello: build (exec) -> deploy (process) -> release (http-check), live log
#   4. ask the app over HTTP, then replay the deployment's events from the stream (`cs events tail`)
#   5. destroy the app and stop the server
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d "${TMPDIR:-/tmp}/cs-demo.XXXXXX")"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export NATS_SERVERS="nats://127.0.0.1:${port}"
export CS_STATE_DIR="${work}/state"
hcl="examples/hello/cloudstation.hcl"
server=""

cleanup() {
  cs destroy -f "$hcl" >/dev/null 2>&1 || true
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "starting the packaged nats-server on 127.0.0.1:${port}"
cs nats serve --port "$port" --store "${work}/store" >"${work}/nats.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.1)' "$port" 2>/dev/null && break
  sleep 0.1
done

step "creating the event stream"
cs nats setup

deployment="demo-$(date +%s)"
step "cs up examples/hello (deployment ${deployment})"
cs up -f "$hcl" --deployment-id "$deployment" --job-id 1

step "the app answers"
cs status -f "$hcl"
python3 - <<'PY'
import json, os, urllib.request
state = os.path.join(os.environ["CS_STATE_DIR"], "apps", "hello", "web.json")
url = json.load(open(state))["deployment"]["url"]
print(url, "->", urllib.request.urlopen(url, timeout=5).read().decode().strip())
PY

step "the deployment's events, replayed from JetStream"
cs events tail --deployment "$deployment" --no-follow

step "destroying the app and stopping the server"
cs destroy -f "$hcl"
cs status -f "$hcl"

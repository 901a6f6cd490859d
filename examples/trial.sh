#!/usr/bin/env bash
# The local trial (`make run`): the mock LLM on 127.0.0.1:9000, Tollgate on 127.0.0.1:50051
# (admin 127.0.0.1:9090) and Envoy with TLS on https://localhost:8443. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/tollgate}
ENVOY_BIN=${ENVOY_BIN:?set ENVOY_BIN or run via make run}
LOGS=.dev/logs
mkdir -p "$LOGS"

"$BIN" dev init --dir .dev

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BIN" mockllm --listen 127.0.0.1:9000 \
  --openai-key file:.dev/mock-openai-key --anthropic-key file:.dev/mock-anthropic-key \
  >"$LOGS/mockllm.log" 2>&1 &
pids+=($!)
"$BIN" serve --config examples/config.yaml >"$LOGS/tollgate.log" 2>&1 &
pids+=($!)
"$ENVOY_BIN" -c envoy/envoy.yaml --use-dynamic-base-id --log-level warn >"$LOGS/envoy.log" 2>&1 &
pids+=($!)

wait_for() { # url, name
  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null --cacert .dev/tls/ca.crt "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not become ready; logs in $LOGS" >&2
  tail -n 20 "$LOGS"/*.log >&2
  exit 1
}
wait_for http://127.0.0.1:9090/readyz tollgate
wait_for http://127.0.0.1:9901/ready envoy
wait_for https://localhost:8443/healthz envoy-listener

KEY=$(cat .dev/demo-key)
cat <<MSG

Tollgate local trial is up (logs in $LOGS). Demo virtual key:

  $KEY

Try it (the mock answers; the demo key never reaches it):

  curl --cacert .dev/tls/ca.crt https://localhost:8443/v1/chat/completions \\
    -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'

  Streaming: add "stream":true,"stream_options":{"include_usage":true} to the body (curl -N).
  Anthropic style: POST /v1/messages with -H "x-api-key: $KEY" and "model":"claude-haiku-4-5".
  New key:  $BIN keys new --config examples/config.yaml --team platform --name me --append .dev/keys.yaml
            (Tollgate reloads the key file live; no restart)

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" || true
echo "a component exited; logs in $LOGS" >&2

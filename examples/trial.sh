#!/usr/bin/env bash
# The local trial (`make run`): the mock LLM on 127.0.0.1:9000, Tollgate on 127.0.0.1:50051
# (admin 127.0.0.1:9090) and Envoy with TLS on https://localhost:8443. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/tollgate}
ENVOY_BIN=${ENVOY_BIN:?set ENVOY_BIN or run via make run}
LOGS=.dev/logs

# The trial's ports, fixed by examples/config.yaml and envoy/envoy.yaml. They are checked
# before anything starts or any log is truncated: a second `make run` must not print a banner
# for components that cannot start, nor wipe the logs of the trial that is running.
TRIAL_PORTS=(9000:mock-llm 50051:tollgate-extproc 9090:tollgate-admin 8443:envoy 9901:envoy-admin)
check_ports() {
  local busy=() entry port
  for entry in "${TRIAL_PORTS[@]}"; do
    port=${entry%%:*}
    # Something accepts connections there (bash's /dev/tcp, no extra tools needed).
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      busy+=("$port (${entry#*:})")
    fi
  done
  if [ "${#busy[@]}" -gt 0 ]; then
    {
      echo "tollgate trial: port(s) already in use on 127.0.0.1:"
      printf '  %s\n' "${busy[@]}"
      echo "Is another \`make run\` still running? Stop it (Ctrl-C in its terminal) or free the port(s)."
      echo "Nothing was started; the logs in $LOGS were left as they were."
    } >&2
    exit 1
  fi
}
check_ports

mkdir -p "$LOGS"
"$BIN" dev init --dir .dev

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
# Ctrl-C (or SIGTERM) stops the trial: say so and leave; the EXIT trap stops the components.
# Without this, the interrupted `wait -n` below would report "a component exited".
trap 'echo; echo "stopping the trial" >&2; exit 130' INT TERM

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
status=0
wait -n "${pids[@]}" || status=$?
echo "a component exited (status $status); logs in $LOGS" >&2
tail -n 20 "$LOGS"/*.log >&2
exit 1

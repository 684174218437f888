#!/usr/bin/env bash
# Deployment runtime on one machine: a flower-superlink and N flower-supernodes on 127.0.0.1
# only, the app submitted with `flwr run`, then everything this script started is stopped.
# The final global weights are compared with a simulation run of the same configuration.
#
#   examples/flower/deploy.sh [CLIENTS] [ROUNDS]      (defaults: 5 clients, 5 rounds)
#
# Needs the venv with flwr and the tinytrain bindings active (see examples/flower/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$(cd "$here/../../data" && pwd)"
clients="${1:-5}"
rounds="${2:-5}"
work="$(mktemp -d -t tinytrain-deploy-XXXXXX)"
export FLWR_HOME="$work/flwr-home" FLWR_DISABLE_UPDATE_CHECK=1
mkdir -p "$FLWR_HOME"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
link_port="$(port)"
sim_port="$(port)"
cat > "$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "deployment"

[superlink.deployment]
address = "127.0.0.1:$link_port"
insecure = true

[superlink.sim]
address = "127.0.0.1:$sim_port"
insecure = true
options.num-supernodes = $clients
EOF

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

wait_healthy() { # port
  for _ in $(seq 1 120); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/health', timeout=1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "nothing healthy on 127.0.0.1:$1" >&2
  return 1
}

config="num-server-rounds=$rounds seed=0 min-clients=$clients data-dir='$data'"

echo "== deployment: superlink on 127.0.0.1:$link_port, $clients supernodes"
setsid flower-superlink --insecure --disable-runtime-dependency-installation --isolation subprocess \
  --host 127.0.0.1 --port "$link_port" --database "$work/link.db" > "$work/superlink.log" 2>&1 &
pids+=("$!")
wait_healthy "$link_port"
for i in $(seq 0 $((clients - 1))); do
  node_port="$(port)"
  setsid flower-supernode --insecure --superlink "127.0.0.1:$link_port" --host 127.0.0.1 --port "$node_port" \
    --node-config "partition-id=$i num-partitions=$clients" > "$work/supernode-$i.log" 2>&1 &
  pids+=("$!")
done
start=$(date +%s)
flwr run "$here" deployment --stream \
  --run-config "$config results-file='$work/deploy.json' weights-file='$work/deploy.ttw'" > "$work/deploy.log" 2>&1 \
  || { tail -30 "$work/deploy.log"; exit 1; }
echo "deployment: $(grep -o 'tinytrain-flower:.*' "$work/deploy.log") ($(($(date +%s) - start)) s)"

echo "== simulation: superlink on 127.0.0.1:$sim_port, $clients virtual clients"
setsid flower-superlink --insecure --simulation --disable-runtime-dependency-installation --isolation subprocess \
  --host 127.0.0.1 --port "$sim_port" --database "$work/sim.db" > "$work/sim-superlink.log" 2>&1 &
pids+=("$!")
wait_healthy "$sim_port"
start=$(date +%s)
flwr run "$here" sim --stream \
  --run-config "$config results-file='$work/sim.json' weights-file='$work/sim.ttw'" > "$work/sim.log" 2>&1 \
  || { tail -30 "$work/sim.log"; exit 1; }
echo "simulation: $(grep -o 'tinytrain-flower:.*' "$work/sim.log") ($(($(date +%s) - start)) s)"

if cmp -s "$work/deploy.ttw" "$work/sim.ttw"; then
  echo "final global weights: identical in deployment and simulation ($(stat -c %s "$work/sim.ttw") bytes)"
else
  python3 - "$work/deploy.ttw" "$work/sim.ttw" <<'EOF'
import sys, numpy as np
a, b = (np.frombuffer(open(p, "rb").read()[24:-4], dtype="<f4") for p in sys.argv[1:])
print(f"final global weights DIFFER: max |deployment - simulation| = {np.abs(a - b).max():.3g}")
EOF
  exit 1
fi
rm -rf "$work"

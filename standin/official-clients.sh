#!/usr/bin/env bash
# Runs the providers' official Python clients against the stand-ins, as
# shared/provider-contracts.md ("Checking a local stand-in against the
# official client") describes, and fails if any command fails.
#
#   standin/official-clients.sh            # prints a transcript on stdout
#
# Environment (all optional):
#   STANDIN_BIN   a built `standin` binary (default: cargo build it)
#   STANDIN_VENV  an existing venv holding the clients (default: a fresh one
#                 in the temporary folder, pip-installed and timed)
#   PYTHON        the interpreter for the fresh venv (default: python3)
#   KEEP=1        keep the temporary folder (HOME, configs, logs)
#
# Everything the clients write (HOME, ~/.nuclia, BENTOML_HOME, JINA_HUB_ROOT,
# DOCKER_CONFIG, HF_HOME) goes to a temporary folder. A fake browser
# ($BROWSER) plays the user: it opens the page a login opens and presses
# Approve, or follows Nuclia's OAuth redirect to the CLI's callback.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=$(mktemp -d "${TMPDIR:-/tmp}/standin-clients.XXXXXX")
standin_pid=
cleanup() {
    if [ -n "$standin_pid" ]; then kill "$standin_pid" 2>/dev/null || true; fi
    if [ "${KEEP:-}" = 1 ]; then echo "(kept $work)" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the clients -------------------------------------------------------------
if [ -n "${STANDIN_VENV:-}" ]; then
    venv=$STANDIN_VENV
else
    venv=$work/venv
    "${PYTHON:-python3}" -m venv "$venv"
    start=$(date +%s)
    PIP_CACHE_DIR=$work/pip-cache "$venv/bin/pip" install --quiet \
        bentoml==1.4.39 jina-hubble-sdk==0.39.0 nuclia==4.15.0 huggingface_hub==2.4.0
    echo "# pip install (empty cache): $(($(date +%s) - start)) s"
fi
py=$venv/bin/python

# --- the stand-ins -----------------------------------------------------------
bin=${STANDIN_BIN:-}
if [ -z "$bin" ]; then
    cargo build --quiet --manifest-path "$root/Cargo.toml" -p tokenward-standin --bin standin
    bin=$root/target/debug/standin
fi
"$bin" >"$work/standin.json" 2>"$work/standin.err" &
standin_pid=$!
for _ in $(seq 100); do
    [ -s "$work/standin.json" ] && break
    sleep 0.1
done
[ -s "$work/standin.json" ] || { echo "standin printed nothing" >&2; cat "$work/standin.err" >&2; exit 1; }
seed() { "$py" -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(eval("d"+sys.argv[2]))' "$work/standin.json" "$1"; }

BENTO_URL=$(seed '["bentocloud"]["url"]'); BENTO_TOKEN=$(seed '["bentocloud"]["token"]')
JINA_URL=$(seed '["jina"]["url"]'); JINA_TOKEN=$(seed '["jina"]["token"]')
NUCLIA_URL=$(seed '["nuclia"]["url"]'); NUCLIA_TOKEN=$(seed '["nuclia"]["token"]')
KB_URL=$(seed '["nuclia"]["kb_url"]'); KB_KEY=$(seed '["nuclia"]["kb_key"]')
NUA_KEY=$(seed '["nuclia"]["nua_key"]')
HF_URL=$(seed '["huggingface"]["url"]'); HF_TOKEN_SEED=$(seed '["huggingface"]["token"]')

# --- the sandbox ---------------------------------------------------------------
mkdir -p "$work/home"
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config XDG_CACHE_HOME=$work/home/.cache
export BENTOML_HOME=$work/home/bentoml BENTOML_DO_NOT_TRACK=true
export JINA_HUB_ROOT=$work/home/.jina DOCKER_CONFIG=$work/home/.docker
export HF_HOME=$work/home/.cache/huggingface HF_HUB_DISABLE_TELEMETRY=1
export TZ=UTC COLUMNS=160 TERM=dumb NO_COLOR=1 PYTHONWARNINGS=ignore
unset BENTO_CLOUD_API_KEY BENTO_CLOUD_API_ENDPOINT JINA_AUTH_TOKEN JINA_HUBBLE_REGISTRY HF_TOKEN HF_ENDPOINT
export PATH=$venv/bin:$PATH

# The user's browser: open the page, press Approve (BentoCloud, Jina), or
# follow the OAuth redirect to the CLI's local callback (Nuclia). It works in
# the background, as a browser does, so that the CLI goes on to listen.
cat >"$work/browser" <<'EOF'
#!/bin/sh
url=$1
log=${BROWSER_LOG:-/dev/null}
(
    echo "[browser] open $url"
    case "$url" in
    */oauth2/auth*)
        curl -sS -L -o /dev/null -w '[browser] landed on %{url_effective} (HTTP %{http_code})\n' "$url" ;;
    *)
        page=$(curl -fsS "$url")
        origin=$(printf '%s' "$url" | sed -E 's#^(https?://[^/]+).*#\1#')
        action=$(printf '%s' "$page" | sed -nE 's#.*<form method="post" action="([^"]+)".*#\1#p')
        field=$(printf '%s' "$page" | sed -nE 's#.*<input type="hidden" name="([^"]+)" value="([^"]+)".*#\1=\2#p')
        echo "[browser] press Approve: POST $origin$action ($field)"
        curl -fsS -o /dev/null -d "$field" "$origin$action" ;;
    esac
) >>"$log" 2>&1 &
EOF
chmod +x "$work/browser"
export BROWSER=$work/browser BROWSER_LOG=$work/browser.log

# The Nuclia CLI with its base URLs (the `nuclia` package's GLOBAL_BASE,
# OAUTH_BASE and REGIONAL, copied into the modules that import them) aimed
# at the stand-in.
cat >"$work/nuclia-standin" <<EOF
#!$py
import os, sys
import nuclia
base = os.environ["NUCLIA_STANDIN_URL"]
nuclia.GLOBAL_BASE = base
nuclia.OAUTH_BASE = base
nuclia.REGIONAL = base  # no {region}: every zone is the stand-in
import nuclia.sdk.oauth, nuclia.lib.nua
nuclia.sdk.oauth.OAUTH_BASE = base
nuclia.lib.nua.REGIONAL = base
from nuclia.cli.run import run
sys.exit(run())
EOF
chmod +x "$work/nuclia-standin"
export NUCLIA_STANDIN_URL=$NUCLIA_URL

# Runs a command on a terminal and answers its prompts (for `bentoml cloud
# login`'s menu): tty-drive PROMPT KEYS [PROMPT KEYS]... -- CMD...
cat >"$work/tty-drive" <<EOF
#!$py
import os, pty, select, sys, time
args = sys.argv[1:]
split = args.index("--")
script, cmd = args[:split], args[split + 1:]
steps = [(script[i].encode(), script[i + 1].encode().decode("unicode_escape").encode())
         for i in range(0, len(script), 2)]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
seen, deadline = b"", time.time() + 120
while True:
    if time.time() > deadline:
        os.kill(pid, 9)
        sys.exit("tty-drive: timed out")
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        seen += data
    if steps and steps[0][0] in seen:
        time.sleep(0.2)
        os.write(fd, steps.pop(0)[1])
        seen = b""
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
EOF
chmod +x "$work/tty-drive"

# --- running -------------------------------------------------------------------
failures=0
last=$work/last.out
# Output without terminal escapes and carriage returns.
plain() { sed -E $'s/\x1b\\[[0-9;?]*[A-Za-z]//g; s/\x1b\\][^\x1b]*\x1b\\\\//g; s/\r//g'; }
# run EXPECTED CMD...: prints "$ CMD" and its output; fails unless the exit
# status is 0 and the output contains EXPECTED.
run() {
    local expected=$1 status=0
    shift
    echo "\$$(printf ' %q' "$@")"
    "$@" 2>&1 | plain >"$last" || status=$?
    cat "$last"
    if [ "$status" -ne 0 ]; then
        echo "!! FAILED: exit status $status"; failures=$((failures + 1))
    elif [ -n "$expected" ] && ! grep -qF -- "$expected" "$last"; then
        echo "!! FAILED: the output lacks \"$expected\""; failures=$((failures + 1))
    fi
    echo
}
# run_fails EXPECTED CMD...: the command must fail (exit non-zero) saying EXPECTED.
run_fails() {
    local expected=$1 status=0
    shift
    echo "\$$(printf ' %q' "$@")    # must fail"
    "$@" 2>&1 | plain >"$last" || status=$?
    cat "$last"
    if [ "$status" -eq 0 ] || ! grep -qF -- "$expected" "$last"; then
        echo "!! FAILED: expected a failure saying \"$expected\" (exit status $status)"; failures=$((failures + 1))
    fi
    echo
}
grab() { "$py" -c 'import re,sys; m=re.search(sys.argv[1], open(sys.argv[2]).read()); print(m.group(1) if m else "")' "$1" "$last"; }

echo "## BentoCloud (bentoml $("$py" -c 'import importlib.metadata as m; print(m.version("bentoml"))'))"
echo
run "Logged in as alice@example.com at acme organization" \
    bentoml cloud login --api-token "$BENTO_TOKEN" --endpoint "$BENTO_URL"
run '"email": "alice@example.com"' bentoml cloud current-context
run "seeded-token" bentoml api-token list
run "created successfully" bentoml api-token create ci-token -d "CI pipeline token" -s api --expires 30d
UID_NEW=$(grab 'UID: (\S+)')
TOKEN_NEW=$(grab '([a-z0-9]{32})')
run "CI pipeline token" bentoml api-token get "$UID_NEW"
run "ci-token" bentoml api-token list --search ci
echo "# the new token is a token of the same user:"
run "$UID_NEW" env BENTO_CLOUD_API_KEY="$TOKEN_NEW" BENTO_CLOUD_API_ENDPOINT="$BENTO_URL" \
    bentoml api-token get "$UID_NEW"
run "deleted successfully" bentoml api-token delete "$UID_NEW"
run_fails "not found" bentoml api-token get "$UID_NEW"
echo "# browser login: the menu's first item, then open the browser (the fake one presses Approve):"
run "Logged in as alice@example.com at acme organization" env BENTOML_HOME="$work/home/bentoml-browser" \
    "$work/tty-drive" "authenticate BentoML CLI" '\r' "[y/n]" 'y\r' -- \
    bentoml cloud login --endpoint "$BENTO_URL"
run "bentoml-cli-" env BENTOML_HOME="$work/home/bentoml-browser" bentoml api-token list
run_fails "Bad credentials" bentoml cloud login --api-token not-a-token --endpoint "$BENTO_URL"

echo "## Jina (jina-hubble-sdk $("$py" -c 'import importlib.metadata as m; print(m.version("jina-hubble-sdk"))'))"
echo
run "You are already logged in as alice" \
    env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_TOKEN" jina-auth login
run "seeded-token" env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_TOKEN" jina-auth token list
run "New token created" \
    env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_TOKEN" jina-auth token create my-token -e 30
# rich wraps the token inside its 50-column panel: join the pieces.
JINA_NEW=$("$py" -c '
import re, sys
rows = [r.strip("│ ") for r in open(sys.argv[1]).read().split("\n") if r.startswith("│")]
out = ""
for r in rows:
    if out and not re.fullmatch(r"[A-Za-z0-9]+", r):
        break
    if out or r.startswith("jina_"):
        out += r
print(out)' "$last")
run "my-token" env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_TOKEN" jina-auth token list
echo "# the new token is a token of the same user:"
run "You are already logged in as alice" \
    env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_NEW" jina-auth login
run "Successfully deleted" \
    env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_TOKEN" jina-auth token delete my-token
run_fails "RequestedEntityNotFoundError" \
    env JINA_HUBBLE_REGISTRY="$JINA_URL" JINA_AUTH_TOKEN="$JINA_TOKEN" jina-auth token delete my-token
echo "# browser login (the fake browser presses Approve), then logout:"
run "Successfully logged in to Jina AI as alice (username: alice-liddell)" \
    env JINA_HUBBLE_REGISTRY="$JINA_URL" jina-auth login -f
run "You are already logged in as alice" env JINA_HUBBLE_REGISTRY="$JINA_URL" jina-auth login
run "You have successfully logged out" env JINA_HUBBLE_REGISTRY="$JINA_URL" jina-auth logout
run "You are not logged in locally" env JINA_HUBBLE_REGISTRY="$JINA_URL" jina-auth logout

echo "## Hugging Face (huggingface_hub $("$py" -c 'import importlib.metadata as m; print(m.version("huggingface_hub"))'))"
echo
run "Login successful" env HF_ENDPOINT="$HF_URL" hf auth login --token "$HF_TOKEN_SEED"
run "orgs: acme" env HF_ENDPOINT="$HF_URL" hf auth whoami
run_fails "Invalid user token" env HF_ENDPOINT="$HF_URL" hf auth login --token hf_notavalidtokenatall0000000000000

echo "## Nuclia (nuclia $("$py" -c 'import importlib.metadata as m; print(m.version("nuclia"))'); base URLs overridden by $work/nuclia-standin)"
echo
nuclia=$work/nuclia-standin
run "Auth completed!" "$nuclia" auth set_user_token "$NUCLIA_TOKEN"
run "name='Alice' email='alice@example.com' type='USER'" "$nuclia" auth get_user
run "User: Alice <alice@example.com>" "$nuclia" auth show
run "seeded token" "$nuclia" auth list_personal_tokens
run "token=" "$nuclia" auth create_personal_token --description "browser extension" --days 30
PAT_ID=$(grab "id='([^']+)'")
run "browser extension" "$nuclia" auth list_personal_tokens
run "" "$nuclia" auth delete_personal_token --token_id "$PAT_ID"
run "seeded token" "$nuclia" auth list_personal_tokens
run_fails "404" "$nuclia" auth delete_personal_token --token_id "$PAT_ID"
run "Validated" "$nuclia" auth kb "$KB_URL" --token "$KB_KEY"
run "multilingual" "$nuclia" kb get_configuration
run "SOWNER" "$nuclia" auth get_account_from_service_token --region europe-1 --token "$KB_KEY"
run "token=" "$nuclia" auth create_ephemeral_token --kbid "$(seed '["nuclia"]["kb_id"]')" --ttl 300
run "Validated" "$nuclia" auth nua "$NUA_KEY"
echo "# OAuth login with PKCE (the fake browser follows the redirect to the CLI's callback):"
run "" "$nuclia" auth logout
run "Auth completed!" "$nuclia" auth login
run "name='Alice'" "$nuclia" auth get_user

echo "## What the fake browser did"
echo
cat "$work/browser.log" 2>/dev/null || true
echo

if [ "$failures" -ne 0 ]; then
    echo "$failures command(s) failed"
    exit 1
fi
echo "all commands succeeded"

#!/usr/bin/env bash
# A real-terminal check that a model's reply never drives the terminal (issue 9, item 1).
#
# Starts the fake Ollama (tests/fake_ollama.py) with a reply whose words carry
#   ESC ] 52 ; c ; UFdORUQ= BEL   (OSC 52: put "PWNED" on the clipboard; the same
#                                  ended by ST, ESC \, as the renderer drops BEL)
#   ESC ] 0 ; PWNED-TITLE BEL     (OSC 0: set the window/pane title)
#   ESC [ 2 J                     (CSI: wipe the screen)
#   U+009B 2 J                    (8-bit CSI: wipe the screen)
#   U+202E                        (right-to-left override)
# runs gemmatui in its own tmux server (never yours) with `set -g set-clipboard on`,
# sends one message, waits for the whole reply, and checks that:
#   * `tmux list-buffers` is unchanged: no buffer (and no PWNED) came from OSC 52;
#   * the pane title (#{pane_title}) is unchanged;
#   * the screen was not wiped: the header and the reply's first words are still shown.
#
# Usage: bench/tmux_hostile_output.sh [REPO_DIR]
#   REPO_DIR: the checkout to run (default: the one this script is in). Python: $PYTHON,
#   else REPO_DIR/.venv/bin/python, else this checkout's .venv/bin/python, else python3
#   (`python -m gemmatui` run from REPO_DIR imports REPO_DIR's code). To see the hole
#   it closes, run it against a checkout from before the fix:
#     git worktree add /tmp/before 4c3c703 && bench/tmux_hostile_output.sh /tmp/before
# Prints PASS or FAIL (with what leaked); exits 0 on PASS, 1 on FAIL, 2 when the
# check could not run (no tmux, the app never showed its prompt, ...).
# Needs tmux (apt-get install -y tmux).
set -euo pipefail

repo=$(cd "${1:-$(dirname "$0")/..}" && pwd)
if [[ -n ${PYTHON:-} ]]; then
    python=$PYTHON
elif [[ -x $repo/.venv/bin/python ]]; then
    python=$repo/.venv/bin/python
elif [[ -x $(dirname "$0")/../.venv/bin/python ]]; then
    python=$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python
else
    python=python3
fi
command -v tmux >/dev/null || { echo "ERROR: tmux is not installed" >&2; exit 2; }

work=$(mktemp -d)
sock=$work/tmux.sock
fake_pid=""
cleanup() {
    tmux -S "$sock" kill-server 2>/dev/null || true
    if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
t() { tmux -u -S "$sock" "$@"; }
die() { echo "ERROR: $*" >&2; exit 2; }

# The hostile reply: one sequence per word (the fake sends a reply word by word; the
# title's two words arrive in two chunks). END-OF-REPLY says the reply is all there.
esc=$'\e' bel=$'\a' csi8=$(printf '\xc2\x9b') rlo=$(printf '\xe2\x80\xae')
reply="Safe start. ${esc}]52;c;UFdORUQ=${bel} clip ${esc}]52;c;UFdORUQ=${esc}\\ clip-st"
reply+=" ${esc}]0;PWNED-TITLE here${bel} title ${esc}[2J wipe ${csi8}2J c1 bidi:${rlo}txt.gnp"
reply+=" END-OF-REPLY"

# The fake Ollama: its first line is its URL.
(cd "$repo" && exec "$python" -m tests.fake_ollama --port 0 --installed 4b --rate 40 \
    --load-seconds 0 --reply "$reply") >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
for _ in $(seq 100); do [[ -s $work/fake.out ]] && break; sleep 0.1; done
url=$(head -n1 "$work/fake.out")
[[ $url == http://* ]] || die "the fake Ollama did not start: $(cat "$work/fake.err")"

cat >"$work/tmux.conf" <<'EOF'
set -g set-clipboard on
set -g default-terminal "tmux-256color"
set -g history-limit 0
EOF
app="cd '$repo' && exec env LANG=C.UTF-8 LC_ALL=C.UTF-8 GEMMATUI_CONFIG='$work/config.toml'"
app+=" GEMMATUI_DATA_DIR='$work/data' OLLAMA_HOST='$url' '$python' -m gemmatui --model 4b"
t -f "$work/tmux.conf" new-session -d -s hostile -x 120 -y 36 "$app"
t set-option -t hostile remain-on-exit on >/dev/null

screen() { t capture-pane -p -t hostile; }
wait_for() {  # wait_for TEXT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        screen | grep -qF -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
wait_for "Message Gemma" 60 || die "the chat never showed its prompt:
$(screen)"
sleep 1
buffers_before=$(t list-buffers -F '#{buffer_name}: #{buffer_sample}')
title_before=$(t display-message -p -t hostile '#{pane_title}')

t send-keys -t hostile -l "hello"
t send-keys -t hostile Enter
wait_for "END-OF-REPLY" 60 || die "the reply never ended:
$(screen)"
sleep 2  # let every redraw that follows reach tmux

buffers_after=$(t list-buffers -F '#{buffer_name}: #{buffer_sample}')
title_after=$(t display-message -p -t hostile '#{pane_title}')
shown=$(screen)

failures=()
[[ $buffers_after == "$buffers_before" ]] ||
    failures+=("tmux buffers changed (OSC 52 reached the terminal): ${buffers_after//$'\n'/ | }")
[[ $title_after == "$title_before" ]] ||
    failures+=("pane title changed (OSC 0 reached the terminal): '$title_before' -> '$title_after'")
grep -qF "gemmatui" <<<"$shown" && grep -qF "Safe start." <<<"$shown" ||
    failures+=("the screen was wiped (CSI 2J reached the terminal)")
if grep -qF "PWNED" <<<"$shown$buffers_after$title_after"; then
    failures+=("PWNED is on screen, in a buffer or in the title")
fi

echo "buffers before: ${buffers_before:-(none)}"
echo "buffers after:  ${buffers_after:-(none)}"
echo "title before:   $title_before"
echo "title after:    $title_after"
if ((${#failures[@]})); then
    printf 'FAIL: %s\n' "${failures[@]}"
    exit 1
fi
echo "PASS: the hostile reply changed no tmux buffer, no pane title, and did not wipe the screen"

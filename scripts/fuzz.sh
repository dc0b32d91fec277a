#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a bounded time and reports what each
# did. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 600)
#
#   FUZZ_TARGETS="tokens search_query"  only these targets
#   FUZZ_JOBS=2                         targets run side by side (default 1)
#   FUZZ_ARGS="-max_len=65536"          extra libFuzzer flags
#   CARGO_TARGET_DIR=...                where the fuzz build goes
#
# Only the stable toolchain is needed: cargo-fuzz passes a few -Z flags,
# which RUSTC_BOOTSTRAP=1 lets stable rustc accept, and the sanitizer is off
# (the code under test forbids `unsafe`; what is looked for is panics,
# aborts, hangs and runaway memory). Corpora grow in fuzz/corpus/<target>
# (seeded from fuzz/seeds/<target>), crashes land in fuzz/artifacts/<target>,
# logs in fuzz/logs/<target>.log. Exits non-zero if any target found
# anything; see FUZZING.md for minimising a finding and keeping it as a
# regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
jobs="${FUZZ_JOBS:-1}"
export RUSTC_BOOTSTRAP=1

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "==> building ${#targets[@]} targets (release, debug assertions, no sanitizer)"
for target in "${targets[@]}"; do
    cargo fuzz build --sanitizer none "$target"
done

mkdir -p fuzz/logs
run_target() {
    local target="$1"
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" "fuzz/seeds/$target"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    cargo fuzz run --sanitizer none "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        ${FUZZ_ARGS:-} >"fuzz/logs/$target.log" 2>&1
}

# Findings of earlier runs stay in fuzz/artifacts (kept until someone
# deletes them); only what this run adds counts.
started=$(mktemp)
trap 'rm -f "$started"' EXIT

echo "==> fuzzing each target for ${seconds}s, ${jobs} at a time"
failed=()
running=0
pids=()
names=()
for target in "${targets[@]}"; do
    run_target "$target" &
    pids+=("$!")
    names+=("$target")
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" 2>/dev/null || true
done

printf '\n%-16s %14s %10s %8s %8s  %s\n' target executions exec/s corpus rss_mb "new findings"
for target in "${targets[@]}"; do
    log="fuzz/logs/$target.log"
    stat() { grep -m1 "^stat::$1:" "$log" 2>/dev/null | awk '{print $2}'; }
    findings=$(find "fuzz/artifacts/$target" -type f -newer "$started" | wc -l)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    printf '%-16s %14s %10s %8s %8s  %s\n' "$target" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$corpus" "$(stat peak_rss_mb)" "$findings"
    if ((findings > 0)) || ! grep -q "^Done [0-9]* runs" "$log"; then
        failed+=("$target")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "findings or an abnormal end in: ${failed[*]} (see fuzz/logs and fuzz/artifacts)" >&2
    exit 1
fi
echo "no findings"

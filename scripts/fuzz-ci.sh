#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a fixed time (CI runs this through .ci/run, after the
# tests): FUZZ_SECONDS each (default 20), capped so that all targets together run at most
# FUZZ_TOTAL_SECONDS (default 150). Fails on any crash and prints the input's path.
#
# cargo fuzz needs a nightly toolchain: `+nightly` where rustup has or can install one.
# Without it (or without cargo-fuzz, which is installed if missing) the same parsers run
# through their property tests instead (fuzz/README.md, "In CI"), repeated with fresh random
# seeds for the same time budget (FUZZ_HARNESS=proptest picks that harness anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
total=${FUZZ_TOTAL_SECONDS:-150}
targets=()
for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
per=$((total / ${#targets[@]}))
[ "$seconds" -le "$per" ] || seconds=$per
[ "$seconds" -ge 1 ] || seconds=1

# The property-test harness over the same parsers: each round is one run of every test
# (a few thousand cases each, new seeds every run), repeated until the budget is spent.
property_tests() {
  local budget=$((seconds * ${#targets[@]}))
  echo "fuzz-ci: FALLBACK: $1; running the property tests for ${budget} s instead"
  local run=(cargo test --release -q -p ssehub-core --test parser_props --test id_topic_props)
  local run_hub=(cargo test --release -q -p ssehub --test fuzz_props)
  local run_lib=(cargo test --release -q -p ssehub --lib -- fuzz::)
  "${run[@]}" --no-run && "${run_hub[@]}" --no-run && "${run_lib[@]}" --no-run
  local deadline=$((SECONDS + budget)) rounds=0
  while [ "$SECONDS" -lt "$deadline" ]; do
    "${run[@]}" >/dev/null && "${run_hub[@]}" >/dev/null && "${run_lib[@]}" >/dev/null || {
      echo "fuzz-ci: FAILED: a property test failed in round $((rounds + 1)) (rerun the command above to see it)" >&2
      exit 1
    }
    rounds=$((rounds + 1))
  done
  echo "fuzz-ci: ok: $rounds rounds of the property tests, no failure"
  exit 0
}

toolchain=+nightly
[ "${FUZZ_HARNESS:-}" != proptest ] || property_tests "FUZZ_HARNESS=proptest"
if ! cargo +nightly --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal >/dev/null 2>&1 \
    || property_tests "no nightly toolchain and rustup cannot install one"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-ci: installing cargo-fuzz"
  cargo install cargo-fuzz --locked -q || property_tests "cargo-fuzz cannot be installed"
fi

# One release build of all targets; `--sanitizer none`: the crates forbid unsafe code, and
# the coverage instrumentation that guides libFuzzer stays on (fuzz/README.md).
echo "fuzz-ci: building ${#targets[@]} targets"
(cd fuzz && cargo "$toolchain" fuzz build -O --sanitizer none)
host=$(rustc "$toolchain" -vV | sed -n 's/^host: //p')

failed=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log=$(mktemp)
  echo "fuzz-ci: $t for ${seconds} s"
  # The working corpus (ignored by git) first: libFuzzer adds what it finds there.
  if (cd fuzz && "target/$host/release/$t" "corpus/$t" "seeds/$t" \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=10 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1) >"$log" 2>&1; then
    result=ok
  else
    result=CRASH
    failed=1
    tail -n 40 "$log" >&2
    grep -E 'Test unit written to|artifact_prefix' "$log" | sed "s#to #to fuzz/#" >&2 || true
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  summary+=("$(printf '%-18s %-5s %12s execs %8s/s  cov %s' "$t" "$result" "${execs:-?}" "${rate:-?}" "${cov:-?}")")
  rm -f "$log"
done
printf 'fuzz-ci: %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz-ci: FAILED: a target crashed; its input is under fuzz/artifacts/<target>/ (paths above)" >&2
  exit 1
fi
echo "fuzz-ci: ok: ${#targets[@]} targets, ${seconds} s each, no crash"

#!/usr/bin/env bash
# Independent validation of the X12 writers with pyx12's x12valid (PyPI, BSD licence).
#
# Generates the example 837P, 837I, 835 and 999 interchanges with our writers
# (`cargo run -p medbill-x12 --example write_samples -- DIR`) and the 999s and 277CAs payer-sim
# answers to sample 837P and 837I batches, with the 835s it pays them with by EFT and by check
# (`cargo run -p medbill-payer-sim --example write_acknowledgments -- DIR`), and the 837s the claims service's own writer makes from sample
# claims: a COB secondary claim (837P and 837I, with 2320/2330/2430), a corrected claim
# (frequency 7), a void (frequency 8) and a claim with prior authorization numbers at claim and line
# level (REF*G1 in 2300 and 2400) (`cargo run -p medbill-claims --example write_claims --
# DIR`), and runs x12valid on each.
# Exits non-zero when pyx12 reports any error, cannot run, or a file is missing.
# pyx12 has no 5010 map for 270/276/278 (its 278 maps are 004010X094): those are checked against
# the segment and element tables in crates/x12/data/x12 by the Rust test tests/x12_tables_270.rs
# instead.
#
# Environment: PYX12_VENV (default /var/tmp/medbill-pyx12-venv), PYX12_VERSION (default 4.0.0),
# CARGO_TARGET_DIR (passed through to cargo).
set -euo pipefail
cd "$(dirname "$0")/../../.."

venv="${PYX12_VENV:-/var/tmp/medbill-pyx12-venv}"
version="${PYX12_VERSION:-4.0.0}"
python="$venv/bin/python"

if ! "$python" -c "import pyx12" 2>/dev/null; then
  echo "installing pyx12 $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "pyx12==$version"
fi

out="$(mktemp -d /var/tmp/medbill-pyx12-XXXXXX)"
trap 'rm -rf "$out"' EXIT

# Built with the whole workspace's features (as `cargo test --workspace` builds them), so after
# the test suite nothing is compiled again; `cargo run -p` would rebuild dependencies with the
# one package's features.
cargo build --quiet --workspace --examples
examples="${CARGO_TARGET_DIR:-target}/debug/examples"
"$examples/write_samples" "$out" >/dev/null
"$examples/write_acknowledgments" "$out" >/dev/null
"$examples/write_claims" "$out" >/dev/null

failed=()
passed=()
names=(837p 837i 999 835 sim-999-accepted sim-277ca sim-999-837i sim-277ca-837i
  sim-835-eft sim-835-check claims-837p-cob claims-837i-cob claims-837p-corrected claims-837i-void
  claims-837p-authorized)
for name in "${names[@]}"; do
  file="$out/$name.x12"
  if [ ! -s "$file" ]; then
    echo "FAIL $name: the example did not write $file"
    failed+=("$name")
    continue
  fi
  # x12valid is run as a module: its console-script wrapper exits 1 even on success. It exits 0
  # when a file fails validation too, so its report is read: a passing file gets "<file>: OK"
  # and no ERROR line.
  log="$out/$name.log"
  set +e
  "$python" -m pyx12.scripts.x12valid "$file" >"$log" 2>&1
  rc=$?
  set -e
  # pyx12 4.0.0 cannot build its own 999 for a set without ST03, which the 835 guide marks not
  # used: that one message (and its traceback, which has no ERROR line) is not a finding.
  errors="$(grep "ERROR" "$log" | grep -v "ERROR Failed to create 999 response$" || true)"
  if [ "$rc" -eq 0 ] && grep -q "^$file: OK$" "$log" && [ -z "$errors" ]; then
    echo "ok   $name"
    passed+=("$name")
  else
    echo "FAIL $name (x12valid exit $rc):"
    sed 's/^/     /' "$log"
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "pyx12 validation FAILED: ${failed[*]} rejected; ${#passed[@]} of ${#names[@]} files accepted"
  exit 1
fi
echo "pyx12 validation PASSED: pyx12 $version accepted all ${#names[@]} generated files (${passed[*]})"

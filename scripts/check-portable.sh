#!/usr/bin/env bash
# Checks that a portable x86-64 build of slm runs on any x86-64 CPU: outside the per-tier
# kernel copies (namespaces slm::tier_avx2, tier_avx512, tier_avx512vnni, chosen at run time)
# and the AMX training kernels (used only after a run-time check), no function may use an
# AVX, AVX-512 or FMA instruction. Usage: scripts/check-portable.sh BINARY
set -euo pipefail
bin=${1:?usage: check-portable.sh BINARY}
command -v objdump >/dev/null || { echo "check-portable: objdump (binutils) is missing" >&2; exit 1; }
# A function's header line is "ADDRESS <NAME>:"; a VEX/EVEX instruction names a ymm, zmm or
# opmask register, or is an FMA, F16C or VNNI instruction.
offenders=$(objdump -d --no-show-raw-insn -C "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = $0; next }
  /%[yz]mm[0-9]|%k[0-7]|vfn?m(add|sub)|vcvtph2ps|vcvtps2ph|vpdpbusd/ {
    if (fn !~ /slm::tier_avx|_amx/) bad[fn]++
  }
  END { for (f in bad) print bad[f] " instructions in " f }')
if [ -n "$offenders" ]; then
  echo "check-portable: $bin uses instructions beyond x86-64 outside the tier kernels:" >&2
  echo "$offenders" | sort -rn | head -20 >&2
  exit 1
fi
tiers=$(objdump -d --no-show-raw-insn -C "$bin" | grep -c '^[0-9a-f]* <slm::tier_avx' || true)
if [ "$tiers" -eq 0 ]; then
  echo "check-portable: $bin holds no tier kernels (built without them?)" >&2
  exit 1
fi
echo "check-portable: baseline x86-64 outside $tiers tier-kernel functions"

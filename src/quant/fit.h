// Scale searches shared by the K and IQ quantizers: given a group of values, choose the
// scale (and min) whose integer grid reconstructs them with the least weighted squared error.
#pragma once
#include <cstdint>

#include "quant/blocks.h"

namespace slm::quant {

// Rounds v to the nearest integer (ties to even) and clamps it to [lo, hi]. Clamping first
// keeps the result defined for huge or NaN inputs (NaN goes to lo).
inline int round_clamp(float v, int lo, int hi) {
  if (!(v >= static_cast<float>(lo))) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return nearest_int(v);
}

// Affine fit x ≈ scale·L − min with L in [0, nmax] and min ≥ 0 (the grid always reaches
// zero or below). Starts from the plain min..max grid, then tries nstep+1 grid densities
// iscale = (nmax + rmin + rdelta·k)/(max − min), for each solving the weighted least-squares
// scale and min for the codes it gives, and keeps the best. use_mad weighs |error| instead
// of error². Returns scale; *min_out gets min; L gets the codes.
float fit_affine(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out,
                 float rmin, float rdelta, int nstep, bool use_mad);

// Symmetric fit x ≈ scale·(L − nmax) with L − nmax in [−nmax, nmax−1]. The value of largest
// magnitude anchors the grid at −nmax (so the sign of scale follows it); then grids
// −(nmax + 0.1k)/max for k = ±1..±9 are tried, each with the least-squares scale for its
// codes, weighting value i by w[i] (x² when w is null). Returns scale (0 with L = 0 for an
// all-zero group).
float fit_symmetric(int n, int nmax, const float* x, const float* w, uint8_t* L);

// As fit_symmetric's plain grid (x² weights), then refined one code at a time (Q3_K, where
// with 8 levels each code matters). n ≤ 256.
float fit_q3(int n, int nmax, const float* x, uint8_t* L);

// Values of largest magnitude below this are treated as an all-zero group.
constexpr float kGroupEps = 1e-15f;

}  // namespace slm::quant

#include "quant/fit.h"

#include <cmath>

namespace slm::quant {

float fit_affine(int n, int nmax, const float* x, const float* w, uint8_t* L, float* min_out,
                 float rmin, float rdelta, int nstep, bool use_mad) {
  float mn = x[0], mx = x[0], sum_w = 0, sum_x = 0;
  for (int i = 0; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (mn > 0) mn = 0;  // the min is subtracted, never added: the grid reaches zero
  if (mx == mn) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *min_out = -mn;
    return 0;
  }
  auto error_of = [&](const uint8_t* codes, float scale, float min) {
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = scale * codes[i] + min - x[i];
      err += w[i] * (use_mad ? std::fabs(diff) : diff * diff);
    }
    return err;
  };

  float iscale = nmax / (mx - mn);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(round_clamp(iscale * (x[i] - mn), 0, nmax));
  float best = error_of(L, scale, mn);

  uint8_t aux[256];
  for (int k = 0; k <= nstep; ++k) {
    iscale = (rmin + rdelta * k + nmax) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * (x[i] - mn), 0, nmax);
      aux[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    // Weighted least squares for x ≈ s·l + m: the 2×2 normal equations.
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float s = (sum_w * sum_xl - sum_x * sum_l) / det;
    float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (m > 0) {  // a positive offset is not representable: refit the scale alone
      m = 0;
      s = sum_xl / sum_l2;
    }
    const float err = error_of(aux, s, m);
    if (err < best) {
      for (int i = 0; i < n; ++i) L[i] = aux[i];
      best = err;
      scale = s;
      mn = m;
    }
  }
  *min_out = -mn;
  return scale;
}

float fit_symmetric(int n, int nmax, const float* x, const float* w, uint8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupEps) {
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nmax);
    return 0;
  }
  auto weight = [&](int i) { return w ? w[i] : x[i] * x[i]; };
  float best_scale = 0, best = -1;
  for (int k = -9; k <= 9; ++k) {
    const float iscale = -(nmax + 0.1f * k) / max;
    float sum_lx = 0, sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * x[i], -nmax, nmax - 1);
      sum_lx += weight(i) * x[i] * l;
      sum_l2 += weight(i) * l * l;
    }
    // For codes l the best scale is Σwxl/Σwl², which removes Σ(wxl)²/Σwl² from the error:
    // keep the grid that removes the most.
    if (sum_l2 > 0 && (best < 0 || sum_lx * sum_lx > best * sum_l2)) {
      best_scale = sum_lx / sum_l2;
      best = best_scale * sum_lx;
      for (int i = 0; i < n; ++i)
        L[i] = static_cast<uint8_t>(round_clamp(iscale * x[i], -nmax, nmax - 1) + nmax);
    }
  }
  if (best < 0) {  // every weight was zero: fall back to the plain absmax grid
    best_scale = -max / nmax;
    for (int i = 0; i < n; ++i)
      L[i] = static_cast<uint8_t>(round_clamp(x[i] / best_scale, -nmax, nmax - 1) + nmax);
  }
  return best_scale;
}

}  // namespace slm::quant

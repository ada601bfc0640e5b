#include "quant/no_fma.h"  // first: see there
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
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0;
  }
  auto weight = [&](int i) { return w ? w[i] : x[i] * x[i]; };
  // Codes for grid iscale and their sums; the least-squares scale for them is Σwxl/Σwl², and
  // it removes (Σwxl)²/Σwl² from the error, so the best grid maximises that.
  auto try_grid = [&](float iscale, float* sum_lx, float* sum_l2, bool store) {
    *sum_lx = *sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = round_clamp(iscale * x[i], -nmax, nmax - 1);
      if (store) L[i] = static_cast<uint8_t>(l + nmax);
      *sum_lx += weight(i) * x[i] * l;
      *sum_l2 += weight(i) * l * l;
    }
  };
  float sum_lx, sum_l2;
  try_grid(-nmax / max, &sum_lx, &sum_l2, true);  // the plain grid: the extreme at −nmax
  float scale = sum_l2 ? sum_lx / sum_l2 : 0.f;
  float best = scale * sum_lx;
  for (int k = -9; k <= 9; ++k) {
    if (k == 0) continue;
    const float iscale = -(nmax + 0.1f * k) / max;
    try_grid(iscale, &sum_lx, &sum_l2, false);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      try_grid(iscale, &sum_lx, &sum_l2, true);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

float fit_q3(int n, int nmax, const float* x, uint8_t* L) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0;
  }
  const float iscale = -nmax / max;
  int l[256];
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    l[i] = round_clamp(iscale * x[i], -nmax, nmax - 1);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * l[i];
    sum_l2 += w * l[i] * l[i];
  }
  // Coordinate descent: move one code at a time to the value that is best for the scale the
  // others imply, keeping the move when it increases (Σwxl)²/Σwl².
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sum_lx - w * x[i] * l[i];
      if (slx > 0) {
        float sl2 = sum_l2 - w * l[i] * l[i];
        const int nl = round_clamp(x[i] * sl2 / slx, -nmax, nmax - 1);
        if (nl != l[i]) {
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * sum_l2 > sum_lx * sum_lx * sl2) {
            l[i] = nl;
            sum_lx = slx;
            sum_l2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(l[i] + nmax);
  return sum_lx / sum_l2;
}

}  // namespace slm::quant

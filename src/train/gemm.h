// C[M×N] += A[M×K]·B[K×N] for row-major matrices with leading dimensions (lda, ldb, ldc
// elements between rows): the dense products of training's attention. Each C element is summed
// over k in order, so results do not depend on how callers split the work.
#pragma once
#include <cstdint>

namespace slm::train {

template <class T>
void gemm_acc(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (int64_t k = 0; k < K; ++k) {
      const T a = A[i * lda + k];
      const T* b = B + k * ldb;
      for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
    }
  }
}

// AVX-512 register blocks where the build has them (matmul_train.cpp).
template <>
void gemm_acc<float>(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                     float* C, int64_t ldc);

}  // namespace slm::train

// The training pass: the loss of a token sequence under base + LoRA and, mirroring the
// forward pass call for call, its gradient with respect to the LoRA pairs only. The base
// weights stay in their file type and are dequantized block by block as they are read.
//
// Memory: the residual stream entering each layer is kept; everything inside a layer is
// recomputed during the backward pass (gradient checkpointing per layer), so activation
// memory is O(layers·tokens·n_embd) plus one layer's working set.
//
// T = float is the training arithmetic (the quantized matmul kernels for W·x); T = double
// exists so tests can check the gradients against finite differences of an exact loss.
#pragma once
#include <cstdint>
#include <vector>

#include "train/lora_model.h"

namespace slm {
class Model;
class ThreadPool;
struct WeightView;
}  // namespace slm

namespace slm::train {

// One training row: packed examples side by side.
struct Sequence {
  std::vector<int32_t> tokens;
  // weight[t]: weight of the loss of predicting tokens[t+1] at position t (0: no loss, as for
  // prompt tokens; the last entry is unused).
  std::vector<float> weight;
  std::vector<int32_t> pos;      // RoPE position of each token (restarts per example)
  std::vector<int32_t> segment;  // a token attends only to earlier tokens of its segment
  // One example of its own: positions 0.., one segment, weight 1 on every prediction.
  static Sequence plain(std::vector<int32_t> tokens);
};

struct LossSum {
  double loss = 0;    // Σ weight[t] · −log p(tokens[t+1] | tokens[..t])
  double weight = 0;  // Σ weight[t]
};

// The products with a frozen base matrix W, read in its own type (dequantized a tile at a
// time): y = W·x forward, dx[t] += Wᵀ·dy[t] backward, for n rows of x or dy. Threads own
// output ranges, so the results do not depend on the thread count.
//   best:  quantized W multiplied in bfloat16 on AMX where the CPU has it (f32 sums);
//          otherwise as plain.
//   plain: forward the inference kernels (activations rounded as llama.cpp does), backward
//          f32 sums over the dequantized W.
enum class MatmulPath { best, plain };
void matmul_forward(ThreadPool& pool, const WeightView& W, const float* x, int n, float* y,
                    MatmulPath path = MatmulPath::best);
void matmul_transposed(ThreadPool& pool, const WeightView& W, const float* dy, int n, float* dx,
                       MatmulPath path = MatmulPath::best);

// The loss of one sequence; with backward, adds d(loss)/d(A, B) into each LoraParam's
// grad_a / grad_b (not divided by the weight). n_ctx chooses LongRoPE's factor set as
// inference does for a context of that size.
template <typename T>
LossSum forward_backward(const Model& model, LoraModel& lora, const Sequence& seq, int n_ctx, ThreadPool& pool,
                         bool backward);

}  // namespace slm::train

#include "quant/no_fma.h"  // first: see there
#include "quant/mixture.h"

#include <algorithm>
#include <cctype>

#include "slm/error.h"

namespace slm {

namespace {

struct TargetRow {
  const char* name;
  GgmlType base;
  bool k_mixture;
  uint32_t file_type;  // llama_ftype
};

// llama_ftype ids (llama.h). A plain K type is labelled with its "_S" file type, the
// closest llama.cpp name; general.file_type is informational only.
constexpr TargetRow kTargets[] = {
    {"F32", GgmlType::F32, false, 0},       {"F16", GgmlType::F16, false, 1},
    {"Q4_0", GgmlType::Q4_0, false, 2},     {"Q4_1", GgmlType::Q4_1, false, 3},
    {"Q8_0", GgmlType::Q8_0, false, 7},     {"Q5_0", GgmlType::Q5_0, false, 8},
    {"Q5_1", GgmlType::Q5_1, false, 9},     {"Q2_K", GgmlType::Q2_K, false, 10},
    {"Q3_K", GgmlType::Q3_K, false, 11},    {"Q3_K_S", GgmlType::Q3_K, true, 11},
    {"Q3_K_M", GgmlType::Q3_K, true, 12},   {"Q3_K_L", GgmlType::Q3_K, true, 13},
    {"Q4_K", GgmlType::Q4_K, false, 14},    {"Q4_K_S", GgmlType::Q4_K, true, 14},
    {"Q4_K_M", GgmlType::Q4_K, true, 15},   {"Q5_K", GgmlType::Q5_K, false, 16},
    {"Q5_K_S", GgmlType::Q5_K, true, 16},   {"Q5_K_M", GgmlType::Q5_K, true, 17},
    {"Q6_K", GgmlType::Q6_K, false, 18},    {"IQ4_NL", GgmlType::IQ4_NL, false, 25},
    {"IQ4_XS", GgmlType::IQ4_XS, false, 30}, {"BF16", GgmlType::BF16, false, 32},
};

}  // namespace

std::string file_type_name(uint32_t ft) {
  static const std::pair<uint32_t, const char*> kNames[] = {
      {0, "all F32"},        {1, "F16"},           {2, "Q4_0"},          {3, "Q4_1"},          {7, "Q8_0"},
      {8, "Q5_0"},           {9, "Q5_1"},          {10, "Q2_K - Medium"}, {11, "Q3_K - Small"}, {12, "Q3_K - Medium"},
      {13, "Q3_K - Large"},  {14, "Q4_K - Small"}, {15, "Q4_K - Medium"}, {16, "Q5_K - Small"}, {17, "Q5_K - Medium"},
      {18, "Q6_K"},          {19, "IQ2_XXS - 2.0625 bpw"}, {20, "IQ2_XS - 2.3125 bpw"}, {21, "Q2_K - Small"},
      {22, "IQ3_XS - 3.3 bpw"}, {23, "IQ3_XXS - 3.0625 bpw"}, {24, "IQ1_S - 1.5625 bpw"}, {25, "IQ4_NL - 4.5 bpw"},
      {26, "IQ3_S - 3.4375 bpw"}, {27, "IQ3_S mix - 3.66 bpw"}, {28, "IQ2_S - 2.5 bpw"}, {29, "IQ2_M - 2.7 bpw"},
      {30, "IQ4_XS - 4.25 bpw"}, {31, "IQ1_M - 1.75 bpw"}, {32, "BF16"}, {36, "TQ1_0 - 1.69 bpw ternary"},
      {37, "TQ2_0 - 2.06 bpw ternary"}};
  for (const auto& [id, name] : kNames)
    if (id == ft) return name;
  return "unknown (" + std::to_string(ft) + ")";
}

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// Layer index from a "blk.N." prefix, -1 for a global tensor.
int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    v = v * 10 + (name[i] - '0');
    if (v > 1000000) return -1;
  }
  return v;
}

// llama.cpp's choice of layers that get more bits: the first and last eighth, and every
// third layer in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

bool is_kept(const TensorDesc& t) {
  return t.n_dims < 2 || contains(t.name, "norm") || contains(t.name, "rope_freqs") ||
         contains(t.name, "rope_factors") || contains(t.name, "ffn_gate_inp");
}

GgmlType fallback_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_K: return GgmlType::Q5_0;
    case GgmlType::Q5_K: return GgmlType::Q5_1;
    case GgmlType::Q6_K: return GgmlType::Q8_0;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K: return GgmlType::Q4_0;
    case GgmlType::IQ4_XS: return GgmlType::IQ4_NL;
    default: return t;
  }
}

// llama-quantize's per-tensor choice for the K mixtures (_S, _M, _L; llama_tensor_get_type):
// by the tensor's role, its layer, and the model's experts and GQA ratio. Falcon's and 70B
// models' special cases are not among the families slm runs.
GgmlType mixture_type(const QuantTarget& target, const TensorDesc& t, bool is_output, int n_layer, int attn_v_index,
                      const ModelFacts& model) {
  if (is_output) return GgmlType::Q6_K;
  const std::string& m = target.name;
  const int i = layer_of(t.name);
  const bool eight_experts = model.n_expert == 8;
  if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) {
    GgmlType type = target.base;
    if (m == "Q3_K_M") type = attn_v_index < 2 ? GgmlType::Q5_K : GgmlType::Q4_K;
    else if (m == "Q3_K_L") type = GgmlType::Q5_K;
    else if ((m == "Q4_K_M" || m == "Q5_K_M") && use_more_bits(attn_v_index, n_layer)) type = GgmlType::Q6_K;
    else if (m == "Q4_K_S" && attn_v_index < 4) type = GgmlType::Q5_K;
    if (eight_experts) type = GgmlType::Q8_0;  // "trades just ~128MB" for the 8-expert model
    return type;
  }
  if (contains(t.name, "attn_k.weight")) return eight_experts ? GgmlType::Q8_0 : target.base;
  if (i >= 0 && contains(t.name, "ffn_down")) {
    if (m == "Q3_K_M") return i < n_layer / 16 ? GgmlType::Q5_K : GgmlType::Q4_K;
    if (m == "Q3_K_L") return GgmlType::Q5_K;
    if ((m == "Q4_K_M" || m == "Q5_K_M") && use_more_bits(i, n_layer)) return GgmlType::Q6_K;
    if (m == "Q4_K_S" && i < n_layer / 8) return GgmlType::Q5_K;
    return target.base;
  }
  if (contains(t.name, "attn_output.weight")) {
    if (eight_experts)
      return m == "Q3_K_S" || m == "Q3_K_M" || m == "Q4_K_S" || m == "Q4_K_M" ? GgmlType::Q5_K : target.base;
    if (m == "Q3_K_M") return GgmlType::Q4_K;
    if (m == "Q3_K_L") return GgmlType::Q5_K;
  }
  return target.base;
}

}  // namespace

QuantTarget parse_quant_target(const std::string& name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const TargetRow& r : kTargets)
    if (up == r.name) return {r.name, r.base, r.k_mixture, r.file_type};
  std::string choices;
  for (const TargetRow& r : kTargets) choices += std::string(choices.empty() ? "" : ", ") + r.name;
  throw Error("unknown quantization type '" + name + "' (choose one of: " + choices + ")");
}

std::vector<TensorPlan> plan_quantization(const QuantTarget& target, const std::vector<TensorDesc>& tensors,
                                          const ModelFacts& model) {
  bool has_output = false;
  int n_layer = 0;
  for (const TensorDesc& t : tensors) {
    has_output |= t.name == "output.weight";
    n_layer = std::max(n_layer, layer_of(t.name) + 1);
  }
  std::vector<TensorPlan> plans;
  plans.reserve(tensors.size());
  int attn_v_index = 0;  // llama-quantize counts the attn_v (and attn_qkv) tensors it meets
  for (const TensorDesc& t : tensors) {
    if (is_kept(t)) {
      plans.push_back({t.type, false, ""});
      continue;
    }
    const bool is_output =
        t.name == "output.weight" || (!has_output && t.name == "token_embd.weight");
    const bool is_attn_v = contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight");
    GgmlType want = target.k_mixture ? mixture_type(target, t, is_output, n_layer, attn_v_index, model) : target.base;
    if (is_attn_v) ++attn_v_index;
    if (is_output && target.output_q6_k && !target.k_mixture) {
      switch (target.base) {
        case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1:
        case GgmlType::IQ4_NL:
          want = GgmlType::Q6_K;
          break;
        default: break;
      }
    }
    std::string note;
    if (t.ne0 % type_info(want).block_size != 0) {
      const GgmlType fb = fallback_of(want);
      note = std::string("row length ") + std::to_string(t.ne0) + " is not a multiple of " +
             type_name(want) + "'s block size";
      if (fb != want && t.ne0 % type_info(fb).block_size == 0) {
        note += std::string(": using ") + type_name(fb);
        want = fb;
      } else {  // llama-quantize's last resort for an unusual shape
        note += ": using F16";
        want = GgmlType::F16;
      }
    }
    // Same type as the source: copy the bytes, re-quantizing could only lose.
    plans.push_back({want, want != t.type, note});
  }
  return plans;
}

}  // namespace slm

// slm quantize IN.gguf OUT.gguf TYPE [--threads N]: rewrites a model with its matrices in
// another block format. TYPE is a ggml type (Q8_0, Q4_K, F16 ...) or a mixture (Q4_K_M,
// Q5_K_M, Q3_K_M); src/quant/mixture.h has the per-tensor rules. Sources of any type slm
// can decode are converted through f32. Metadata is copied; general.file_type and
// general.quantization_version are set.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/progress.h"
#include "gguf/gguf.h"
#include "quant/mixture.h"
#include "quant/quant.h"

namespace slm::cli {
namespace {

struct Options {
  std::string in, out, type;
  int threads = 0;
  bool allow_requantize = false;
};

// Converts rows [r0, r1) of a tensor from its type to `to`, through f32.
void convert_rows(const GgufTensor& t, GgmlType to, uint8_t* dst, int64_t r0, int64_t r1) {
  const int64_t n = t.ne[0];
  const size_t out_row = row_bytes(to, n);
  std::vector<float> row(static_cast<size_t>(n));
  for (int64_t r = r0; r < r1; ++r) {
    dequantize_row(t.type, t.data + r * t.row_size(), row.data(), n);
    quantize_row(to, row.data(), dst + r * out_row, n);
  }
}

// Splits the rows over `threads` workers; the first error any worker hits is rethrown.
void convert_tensor(const GgufTensor& t, GgmlType to, uint8_t* dst, int threads) {
  const int64_t rows = t.n_rows();
  const int workers = static_cast<int>(std::min<int64_t>(threads, rows));
  if (workers <= 1) {
    convert_rows(t, to, dst, 0, rows);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(workers);
  for (int w = 0; w < workers; ++w) {
    pool.emplace_back([&, w] {
      try {
        convert_rows(t, to, dst, rows * w / workers, rows * (w + 1) / workers);
      } catch (...) {
        errors[w] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}


int run_quantize(const Options& o) {
  const QuantTarget target = parse_quant_target(o.type);
  {  // the destination is checked before any work, not after it
    std::error_code ec;
    if (std::filesystem::is_directory(o.out, ec)) throw Error(o.out + ": is a directory");
    if (std::filesystem::equivalent(o.in, o.out, ec)) throw Error(o.out + ": is the input file; write to another name");
    FILE* f = std::fopen((o.out + ".tmp").c_str(), "wb");
    if (!f) throw Error(o.out + ": cannot write here (" + std::strerror(errno) + ")");
    std::fclose(f);
    std::remove((o.out + ".tmp").c_str());
  }
  auto src = GgufFile::open(o.in);
  // Quantizing an already quantized file stacks two rounding errors; llama-quantize refuses
  // it too unless asked.
  const bool to_quantized = target.base != GgmlType::F32 && target.base != GgmlType::F16 && target.base != GgmlType::BF16;
  if (!o.allow_requantize && to_quantized)
    for (const GgufTensor& t : src->tensors())
      if (t.n_dims >= 2 && t.type != GgmlType::F32 && t.type != GgmlType::F16 && t.type != GgmlType::BF16)
        throw Error(o.in + ": already quantized (tensor " + t.name + " is " + type_name(t.type) +
                    "); quantize from the F16/BF16/F32 file, or pass --allow-requantize");
  const int threads = o.threads > 0 ? o.threads
                                     : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

  std::vector<TensorDesc> descs;
  for (const GgufTensor& t : src->tensors()) descs.push_back({t.name, t.n_dims, t.ne[0], t.type});
  ModelFacts facts;
  const std::string arch = src->get_string_or("general.architecture", "");
  facts.n_expert = int(src->get_int_or(arch + ".expert_count", 0));
  const GgufValue* heads = src->find(arch + ".attention.head_count");
  const GgufValue* kv = src->find(arch + ".attention.head_count_kv");
  if (heads && heads->is_integer() && kv && kv->is_integer() && kv->as_int() > 0)
    facts.n_gqa = int(heads->as_int() / kv->as_int());
  const std::vector<TensorPlan> plans = plan_quantization(target, descs, facts);

  // Check every conversion is possible before spending time on any.
  for (size_t i = 0; i < plans.size(); ++i) {
    const GgufTensor& t = src->tensors()[i];
    if (plans[i].convert && !type_info(t.type).can_dequantize)
      throw Error(o.in + ": tensor '" + t.name + "' is " + type_name(t.type) +
                  ", which slm cannot decode, so it cannot be converted to " + type_name(plans[i].type));
  }

  GgufWriter w(src->alignment());
  for (const auto& [key, value] : src->metadata()) w.set(key, value);
  w.set("general.file_type", GgufValue::make_u32(target.file_type));
  w.set("general.quantization_version", GgufValue::make_u32(2));

  uint64_t total = 0;
  for (size_t i = 0; i < plans.size(); ++i)
    if (plans[i].convert) total += src->tensors()[i].n_elements();
  Progress progress(total);
  uint64_t done = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  const auto t0 = std::chrono::steady_clock::now();

  std::vector<std::vector<uint8_t>> buffers;  // converted data, alive until write()
  buffers.reserve(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    const GgufTensor& t = src->tensors()[i];
    const TensorPlan& p = plans[i];
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    if (!p.note.empty()) {
      if (isatty(2)) std::fprintf(stderr, "\r%-100s\r", "");
      std::fprintf(stderr, "%s: %s\n", t.name.c_str(), p.note.c_str());
    }
    bytes_in += t.nbytes;
    if (!p.convert) {
      w.add_tensor(t.name, t.type, ne, t.data, t.nbytes);  // straight from the mapping
      bytes_out += t.nbytes;
      continue;
    }
    const size_t nbytes = row_bytes(p.type, t.ne[0]) * static_cast<size_t>(t.n_rows());
    buffers.emplace_back(nbytes);
    progress.update(done, fmt::format("{} {} -> {}", t.name, type_name(t.type), type_name(p.type)));
    convert_tensor(t, p.type, buffers.back().data(), threads);
    done += t.n_elements();
    w.add_tensor(t.name, p.type, ne, buffers.back().data(), nbytes);
    bytes_out += nbytes;
  }
  progress.update(done, "writing " + o.out);
  w.write(o.out);
  progress.done();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%s: %zu tensors, %.2f MiB -> %.2f MiB (%s, %d threads, %.2f s)\n",
               o.out.c_str(), plans.size(), bytes_in / 1048576.0, bytes_out / 1048576.0,
               target.name.c_str(), threads, secs);
  return 0;
}

}  // namespace

Action add_quantize(CLI::App& app) {
  auto o = std::make_shared<Options>();
  CLI::App* sub = app.add_subcommand(
      "quantize", "Rewrite a GGUF model with its matrices in another format (Q8_0, Q4_K_M, F16 ...)");
  sub->add_option("input", o->in, "Source GGUF file")->required()->check(CLI::ExistingFile);
  sub->add_option("output", o->out, "Destination GGUF file")->required();
  sub->add_option("type", o->type,
                  "F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS, "
                  "or a mixture Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M")
      ->required();
  sub->add_option("-t,--threads", o->threads, "Worker threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  sub->add_flag("--allow-requantize", o->allow_requantize, "Accept an already quantized input (two roundings)");
  return [o] { return run_quantize(*o); };
}

}  // namespace slm::cli

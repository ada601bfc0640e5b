// `slm serve`: the OpenAI-compatible HTTP server.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "quant/types.h"

namespace slm::server {

struct ServeOptions {
  std::string model_path;
  std::string host = "127.0.0.1";
  int port = 8080;
  int n_parallel = 4;
  int n_ctx = 0;  // per slot; 0 = min(model context, 4096)
  int n_threads = 0;  // 0 = hardware threads
  std::string api_key;
  size_t max_body = 1 << 20;
  int timeout_s = 600;  // per request: read/write timeout and generation wall-clock limit
  int max_queue = 64;
  std::string chat_template_path;
  std::string kv_type = "f32";  // for the start-up line
  GgmlType kv_type_k = GgmlType::F32, kv_type_v = GgmlType::F32;
  std::vector<std::pair<std::string, float>> lora;  // adapters loaded at start: file, default scale
  std::string alias;  // the model name /v1/models reports (default: the file's stem)
  bool quiet = false;  // no access log
  bool context_shift = false;  // a full slot drops the oldest half of its context and goes on
  int n_keep = 0;              // with context_shift: tokens after BOS always kept (-1: the prompt)
};

// Loads the model, listens, serves until SIGINT/SIGTERM; returns the exit code.
int serve(const ServeOptions& opt);

}  // namespace slm::server

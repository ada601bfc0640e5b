// Tokenizer throughput: 1 MB of mixed English prose, code and multilingual text per
// vocabulary in ../shared/vocab (MB/s), 1 MB of one repeated character and of whitespace
// (to show there is no super-linear blow-up), and vocabulary load time.
//
//   build/bench_tokenizer [--benchmark_filter=...]   (run from the repository root, or set
//   SLM_SHARED to the shared folder)
#include <benchmark/benchmark.h>
#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "slm/tokenizer.h"

namespace {

std::string shared_dir() {
  if (const char* s = std::getenv("SLM_SHARED"); s && *s) return s;
  for (const char* d : {"../shared", "../../shared", "/work/shared"}) {
    std::ifstream probe(std::string(d) + "/text/war-and-peace.txt");
    if (probe) return d;
  }
  return "../shared";
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

const char* const kCode[] = {
    "int main(int argc, char** argv) {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n"
    "  if (argc > 1 && argv[1][0] == '-') return 1;\n  return v.size() == 3 ? 0 : 2;\n}\n",
    "def fib(n: int) -> int:\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n"
    "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint([fib(i) for i in range(10)])\n",
    "const xs = [3.14, 2.71, 1e-9];\nfunction sum(a) { return a.reduce((s, x) => s + x, 0); }\n"
    "console.log(`total=${sum(xs).toFixed(3)}`); // 5.850\n",
    "SELECT id, name FROM users WHERE created_at >= '2024-01-01' AND status <> 'deleted' ORDER BY id;\n",
};
const char* const kMultilingual[] = {
    "Война и мир — роман-эпопея Льва Николаевича Толстого, описывающий русское общество. ",
    "天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。我想在苹果公司工作1314151天～ ",
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。 ",
    "في البدء خلق الله السماوات والأرض. وكانت الأرض خربة وخالية. ",
    "नमस्ते दुनिया, यह एक परीक्षण है। ",
    "Ünïcödé: naïve café, Straße, Cửa Việt, Ελληνικά, 한국어 텍스트. ",
    "Emoji: 🦙🚀 😶‍🌫️ 👩‍👩‍👧‍👦 ✅ 👍🏽 ",
};

// 1 MiB: 6 KiB slices of War and Peace, each followed by a code and a multilingual snippet.
const std::string& mixed_text() {
  static const std::string text = [] {
    const std::string book = read_file(shared_dir() + "/text/war-and-peace.txt");
    const size_t target = 1 << 20;
    std::string out;
    size_t pos = 0, k = 0;
    while (out.size() < target && !book.empty()) {
      out.append(book, pos, 6 * 1024);
      pos = (pos + 6 * 1024) % (book.size() - 6 * 1024);
      out += kCode[k % std::size(kCode)];
      out += kMultilingual[k % std::size(kMultilingual)];
      ++k;
    }
    out.resize(std::min(out.size(), target));
    // Do not end in the middle of a character.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
    return out;
  }();
  return text;
}

struct Loaded {
  std::unique_ptr<slm::GgufFile> file;
  std::unique_ptr<slm::Tokenizer> tok;
};

Loaded& loaded(const std::string& path) {
  static std::vector<std::pair<std::string, std::unique_ptr<Loaded>>> cache;
  for (auto& [p, l] : cache)
    if (p == path) return *l;
  auto l = std::make_unique<Loaded>();
  l->file = slm::GgufFile::open(path);
  l->tok = slm::Tokenizer::from_gguf(*l->file);
  cache.emplace_back(path, std::move(l));
  return *cache.back().second;
}

void encode_bench(benchmark::State& state, const std::string& path, const std::string& text) {
  const slm::Tokenizer& tok = *loaded(path).tok;
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, false, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["bytes/token"] = n_tokens ? static_cast<double>(text.size()) / n_tokens : 0;
}

void decode_bench(benchmark::State& state, const std::string& path) {
  const slm::Tokenizer& tok = *loaded(path).tok;
  const auto ids = tok.encode(mixed_text(), false, false);
  for (auto _ : state) {
    std::string s = tok.decode(ids);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(mixed_text().size()));
}

void load_bench(benchmark::State& state, const std::string& path) {
  auto file = slm::GgufFile::open(path);  // the GGUF parse is not the tokenizer's cost
  for (auto _ : state) {
    auto tok = slm::Tokenizer::from_gguf(*file);
    benchmark::DoNotOptimize(tok.get());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = shared_dir() + "/vocab";
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 5 && n.compare(n.size() - 5, 5, ".gguf") == 0) names.push_back(n);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  static const std::string repeated(1 << 20, 'a'), spaces(1 << 20, ' ');
  for (const std::string& n : names) {
    const std::string path = dir + "/" + n;
    std::string label = n.substr(0, n.size() - 5);
    if (label.rfind("ggml-vocab-", 0) == 0) label = label.substr(11);
    benchmark::RegisterBenchmark(("encode_mixed_1MB/" + label).c_str(),
                                 [path](benchmark::State& s) { encode_bench(s, path, mixed_text()); })
        ->Unit(benchmark::kMillisecond)->MinTime(0.5);
    benchmark::RegisterBenchmark(("encode_repeated_a_1MB/" + label).c_str(),
                                 [path](benchmark::State& s) { encode_bench(s, path, repeated); })
        ->Unit(benchmark::kMillisecond)->MinTime(0.5);
    benchmark::RegisterBenchmark(("encode_spaces_1MB/" + label).c_str(),
                                 [path](benchmark::State& s) { encode_bench(s, path, spaces); })
        ->Unit(benchmark::kMillisecond)->MinTime(0.5);
    benchmark::RegisterBenchmark(("decode_mixed_1MB/" + label).c_str(),
                                 [path](benchmark::State& s) { decode_bench(s, path); })
        ->Unit(benchmark::kMillisecond)->MinTime(0.2);
    benchmark::RegisterBenchmark(("load/" + label).c_str(), [path](benchmark::State& s) { load_bench(s, path); })
        ->Unit(benchmark::kMillisecond)->MinTime(0.5);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

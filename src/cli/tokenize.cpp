// slm tokenize -m FILE [--ids] [--no-bos] [--special] (-p TEXT | -f FILE)
// Prints the token ids of a text under a model's tokenizer: with --ids one line of
// space-separated ids, otherwise one line per token: the id, then its piece quoted.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "gguf/gguf.h"
#include "slm/error.h"
#include "slm/tokenizer.h"
#include "tokenizer/utf8.h"

namespace slm::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string prompt;
  std::string file;
  bool ids = false;
  bool no_bos = false;
  bool special = false;
};

// Double-quoted with C escapes, so every piece stays on one line and shows its exact bytes:
// control characters and bytes that are not (complete) UTF-8 are written as \xNN.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::char_len(s, i);
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (n > 1) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02X", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

int run_tokenize(const TokenizeOptions& o) {
  std::string text = o.prompt;
  if (!o.file.empty()) text = read_text_input(o.file, "text to tokenize");
  auto file = GgufFile::open(o.model);
  auto tok = Tokenizer::from_gguf(*file);
  const std::vector<int32_t> ids = tok->encode(text, !o.no_bos, o.special);
  std::string out;
  if (o.ids) {
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out += ' ';
      out += std::to_string(ids[i]);
    }
    out += '\n';
  } else {
    for (int32_t id : ids) out += std::to_string(id) + " " + quoted(tok->token_to_piece(id, true)) + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

Action add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  sub->add_option("-m,--model", o->model, "GGUF file (a model or a vocabulary-only file)")->required();
  auto* p = sub->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  auto* f = sub->add_option("-f,--file", o->file, "Read the text from this file (bytes as they are)");
  p->excludes(f);
  f->excludes(p);
  sub->add_flag("--ids", o->ids, "Print only the ids, space-separated, on one line");
  sub->add_flag("--no-bos", o->no_bos, "Add no special tokens (no BOS, no EOS)");
  sub->add_flag("--special", o->special, "Parse control-token text (e.g. <|eot_id|>) as those tokens");
  sub->callback([p, f] {
    if (p->count() == 0 && f->count() == 0) throw CLI::RequiredError("-p or -f");
  });
  return [o] { return run_tokenize(*o); };
}

}  // namespace slm::cli

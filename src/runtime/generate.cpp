#include <algorithm>
#include <chrono>

#include "slm/error.h"
#include "slm/sampler.h"
#include "slm/session.h"
#include "slm/tokenizer.h"

namespace slm {

GenerateResult generate(Session& session, Sampler& sampler, const Tokenizer& tok,
                        const std::vector<int32_t>& prompt, const GenerateParams& params,
                        const std::function<void(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  if (prompt.empty()) throw Error("empty prompt: nothing to evaluate");
  auto emit = [&](const std::string& s) {
    if (s.empty()) return;
    r.text += s;
    on_text(s);
  };

  auto t0 = clock::now();
  session.eval(prompt);
  r.prompt_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  r.n_prompt = static_cast<int>(prompt.size());
  for (int32_t t : prompt) sampler.accept(t);

  StreamDecoder decoder(tok);
  StopMatcher stops(params.stops);
  const int n_vocab = session.model().n_vocab();
  r.stop_reason = "length";
  auto t1 = clock::now();
  while (params.n_predict < 0 || r.n_generated < params.n_predict) {
    if (params.cancelled && params.cancelled()) {
      r.stop_reason = "cancelled";
      break;
    }
    int32_t next = sampler.sample(session.logits().data(), n_vocab);
    if (tok.is_eog(next)) {
      r.stop_reason = "eog";
      break;
    }
    sampler.accept_generated(next);
    r.tokens.push_back(next);
    ++r.n_generated;
    emit(stops.push(decoder.push(next)));
    if (stops.stopped()) {
      r.stop_reason = "stop";
      break;
    }
    if (params.n_predict >= 0 && r.n_generated >= params.n_predict) break;
    if (session.n_past() >= session.n_ctx()) {
      const int keep = std::clamp(params.n_keep, 0, session.n_past() - 1);
      const int discard = (session.n_past() - keep) / 2;
      if (!params.context_shift || discard <= 0) {
        r.stop_reason = "context";
        break;
      }
      session.shift(keep, discard);
      ++r.n_shifts;
    }
    session.eval({next});
  }
  r.generate_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  if (!stops.stopped()) emit(stops.push(decoder.flush()));
  emit(stops.flush());
  return r;
}

}  // namespace slm

#include "slm/model.h"

#include "gguf/gguf.h"
#include "model/config.h"
#include "model/weights.h"
#include "slm/error.h"

namespace slm {

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::shared_ptr<const GgufFile> f = GgufFile::open(path);
  return from_gguf(std::move(f));
}

std::unique_ptr<Model> Model::from_gguf(std::shared_ptr<const GgufFile> file) {
  std::unique_ptr<Model> m(new Model());
  try {
    m->config_ = std::make_unique<ModelConfig>(ModelConfig::from_gguf(*file));
    m->weights_ = std::make_unique<Weights>(Weights::bind(*file, *m->config_));
    m->weights_->repack_for_cpu(file->mapped());
  } catch (const Error& e) {
    throw Error(file->path() + ": " + e.what());
  }
  m->file_ = std::move(file);
  return m;
}

int Model::n_vocab() const { return config_->n_vocab; }

size_t Model::weight_bytes() const {
  size_t b = 0;
  for (const GgufTensor& t : file_->tensors()) b += t.nbytes;
  return b;
}

}  // namespace slm

// Writer round trip and typed access: what we write, we read back identically.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "common/shared.h"
#include "gguf/gguf.h"

using namespace slm;

namespace {

std::string temp_path(const char* tag) {
  return "/tmp/slm_test_" + std::string(tag) + "_" + std::to_string(getpid()) + ".gguf";
}

GgufValue make(GgufType t, uint64_t u, int64_t i, double f) {
  GgufValue v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

}  // namespace

TEST(GgufWriter, RoundTripEveryValueTypeAndTensor) {
  GgufWriter w(64);
  w.set("general.architecture", GgufValue::make_string("llama"));
  w.set("t.u8", make(GgufType::UINT8, 200, 0, 0));
  w.set("t.i8", make(GgufType::INT8, 0, -100, 0));
  w.set("t.u16", make(GgufType::UINT16, 60000, 0, 0));
  w.set("t.i16", make(GgufType::INT16, 0, -30000, 0));
  w.set("t.u32", GgufValue::make_u32(4000000000u));
  w.set("t.i32", GgufValue::make_i32(-2000000000));
  w.set("t.f32", GgufValue::make_f32(1e-5f));
  w.set("t.bool", GgufValue::make_bool(true));
  w.set("t.str", GgufValue::make_string(std::string("h\xC3\xA9llo\0x", 8)));
  w.set("t.u64", GgufValue::make_u64(1ull << 60));
  w.set("t.i64", make(GgufType::INT64, 0, -(1ll << 60), 0));
  w.set("t.f64", make(GgufType::FLOAT64, 0, 0, 3.141592653589793));
  w.set("t.strs", GgufValue::make_array(GgufType::STRING, {GgufValue::make_string("a"), GgufValue::make_string("")}));
  w.set("t.nested", GgufValue::make_array(GgufType::ARRAY,
                                          {GgufValue::make_array(GgufType::INT32, {GgufValue::make_i32(1), GgufValue::make_i32(-2)}),
                                           GgufValue::make_array(GgufType::INT32, {})}));
  w.set("t.u32", GgufValue::make_u32(7));  // replaces, keeps position

  std::vector<float> a(32 * 3);
  for (size_t k = 0; k < a.size(); ++k) a[k] = static_cast<float>(k) * 0.5f - 3;
  std::vector<uint8_t> q(34 * 2, 0x5A);
  std::vector<uint16_t> h(5, 0x3C00);
  w.add_tensor("a", GgmlType::F32, {32, 3}, a.data(), a.size() * 4);
  w.add_tensor("q", GgmlType::Q8_0, {64}, q.data(), q.size());
  w.add_tensor("h", GgmlType::F16, {5, 1, 1, 1}, h.data(), h.size() * 2);
  std::string path = temp_path("rt");
  w.write(path);

  auto f = GgufFile::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("t.u8"), 200);
  EXPECT_EQ(f->get_int("t.i8"), -100);
  EXPECT_EQ(f->get_int("t.u16"), 60000);
  EXPECT_EQ(f->get_int("t.i16"), -30000);
  EXPECT_EQ(f->get_u32("t.u32"), 7u);
  EXPECT_EQ(f->get_int("t.i32"), -2000000000);
  EXPECT_EQ(f->get_f32("t.f32"), 1e-5f);
  EXPECT_TRUE(f->get_bool("t.bool"));
  EXPECT_EQ(f->get_string("t.str"), std::string("h\xC3\xA9llo\0x", 8));
  EXPECT_EQ(f->get_int("t.u64"), int64_t(1ll << 60));
  EXPECT_EQ(f->get_int("t.i64"), -(1ll << 60));
  EXPECT_EQ(f->get("t.f64").f, 3.141592653589793);
  EXPECT_EQ(f->get_string_array("t.strs"), (std::vector<std::string>{"a", ""}));
  const auto& nested = f->get_array("t.nested");
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested[0].arr[1].i, -2);
  EXPECT_TRUE(nested[1].arr.empty());
  // keys in the order written, the replaced key in its first position
  EXPECT_EQ(f->metadata()[5].first, "t.u32");

  ASSERT_EQ(f->tensors().size(), 3u);
  const GgufTensor* ta = f->find_tensor("a");
  ASSERT_TRUE(ta);
  EXPECT_EQ(ta->ne[0], 32);
  EXPECT_EQ(ta->ne[1], 3);
  EXPECT_EQ(ta->n_dims, 2u);
  EXPECT_EQ(0, std::memcmp(ta->data, a.data(), a.size() * 4));
  const GgufTensor* tq = f->find_tensor("q");
  EXPECT_EQ(tq->type, GgmlType::Q8_0);
  EXPECT_EQ(tq->nbytes, q.size());
  EXPECT_EQ(0, std::memcmp(tq->data, q.data(), q.size()));
  EXPECT_EQ(f->find_tensor("h")->n_dims, 4u);
  for (const GgufTensor& t : f->tensors()) EXPECT_EQ(t.offset % 64, 0u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  unlink(path.c_str());
}

TEST(GgufWriter, NoTemporaryLeftAndErrorsOnBadTarget) {
  GgufWriter w;
  w.set("k", GgufValue::make_u32(1));
  EXPECT_THROW(w.write("/nonexistent-dir/x.gguf"), Error);
  std::string path = temp_path("tmp");
  w.write(path);
  EXPECT_NE(access(path.c_str(), F_OK), -1);
  EXPECT_EQ(access((path + ".tmp").c_str(), F_OK), -1);
  unlink(path.c_str());
}

TEST(GgufWriter, RejectsInconsistentTensor) {
  GgufWriter w;
  std::vector<uint8_t> b(100);
  EXPECT_THROW(w.add_tensor("x", GgmlType::Q4_0, {33}, b.data(), 18), Error);  // not whole blocks
  EXPECT_THROW(w.add_tensor("x", GgmlType::F32, {4}, b.data(), 15), Error);    // wrong size
}

TEST(GgufTypedAccess, MissingAndWrongTypeNameKeyAndTypes) {
  GgufWriter w;
  w.set("a.str", GgufValue::make_string("x"));
  w.set("a.int", GgufValue::make_i32(-3));
  std::string path = temp_path("typed");
  w.write(path);
  auto f = GgufFile::open(path);
  try {
    f->get_u32("a.missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'a.missing' is missing"), std::string::npos) << e.what();
  }
  try {
    f->get_string("a.int");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'a.int'"), std::string::npos) << m;
    EXPECT_NE(m.find("INT32"), std::string::npos) << m;
    EXPECT_NE(m.find("STRING"), std::string::npos) << m;
  }
  EXPECT_THROW(f->get_u32("a.int"), Error);  // negative does not fit
  EXPECT_EQ(f->get_int("a.int"), -3);
  EXPECT_EQ(f->get_int_or("a.nope", 42), 42);
  EXPECT_THROW(f->get_int_or("a.str", 42), Error);  // present but wrong type still throws
  unlink(path.c_str());
}

#include "app/energy.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

namespace slm {

namespace {

bool read_number(const std::string& path, double* out) {
  std::ifstream f(path);
  double v = 0;
  if (!(f >> v)) return false;
  *out = v;
  return true;
}

}  // namespace

EnergyMeter::EnergyMeter() {
  const std::filesystem::path root = "/sys/class/powercap";
  std::error_code ec;
  if (!std::filesystem::exists(root, ec)) {
    why_none_ = "no /sys/class/powercap on this machine";
    return;
  }
  // Top-level package zones only (intel-rapl:0, not intel-rapl:0:1, which is inside it).
  const std::regex top(R"([a-z_-]*rapl[a-z_-]*:[0-9]+)");
  for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, top)) continue;
    Zone z;
    z.path = (e.path() / "energy_uj").string();
    if (!read_number(z.path, &z.start_uj)) continue;  // often root-only
    read_number((e.path() / "max_energy_range_uj").string(), &z.max_uj);
    zones_.push_back(z);
  }
  if (zones_.empty()) why_none_ = "no readable powercap energy counter (RAPL absent or not permitted)";
}

void EnergyMeter::restart() {
  for (Zone& z : zones_) read_number(z.path, &z.start_uj);
}

double EnergyMeter::joules() const {
  double total = 0;
  for (const Zone& z : zones_) {
    double now = 0;
    if (!read_number(z.path, &now)) continue;
    double d = now - z.start_uj;
    if (d < 0 && z.max_uj > 0) d += z.max_uj;  // the counter wrapped
    if (d > 0) total += d;
  }
  return total * 1e-6;
}

std::string EnergyMeter::source() const {
  if (zones_.empty()) return why_none_;
  std::string s = "powercap";
  for (const Zone& z : zones_) s += " " + std::filesystem::path(z.path).parent_path().filename().string();
  return s;
}

std::string EnergyMeter::describe(double tokens, double price_per_kwh) const {
  if (!available()) return "not measured (" + why_none_ + ")";
  const double j = joules();
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.3f J (%.5f J/token, %.3g $ at %.2f $/kWh; %s)", j, tokens > 0 ? j / tokens : 0.0,
                j / 3.6e6 * price_per_kwh, price_per_kwh, source().c_str());
  return buf;
}

}  // namespace slm

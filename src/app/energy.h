// Energy actually used, where the machine exposes a counter: Linux powercap (Intel RAPL, and
// AMD's RAPL through the same interface), package zones summed, wrap-around handled. Where no
// counter is readable the reading says so; it never guesses.
#pragma once
#include <string>
#include <vector>

namespace slm {

class EnergyMeter {
 public:
  EnergyMeter();                      // finds the readable package counters and reads them
  bool available() const { return !zones_.empty(); }
  double joules() const;              // since construction (or the last restart())
  void restart();
  std::string source() const;         // e.g. "powercap intel-rapl:0" or why none
  // "12.3 J (0.031 J/token, 0.0000034 $ at 0.30 $/kWh)" or "not measured (...)".
  std::string describe(double tokens, double price_per_kwh) const;

 private:
  struct Zone {
    std::string path;       // .../energy_uj
    double max_uj = 0;      // max_energy_range_uj: the counter wraps there
    double start_uj = 0;
  };
  std::vector<Zone> zones_;
  std::string why_none_;
};

}  // namespace slm

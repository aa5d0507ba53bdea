// (b) when the build found no UDT (Debian's libudt-dev): the benchmark says so and goes on.
#include "benchmarks/stream/transfer.hpp"

namespace kadnet::bench {

transfer_result run_udt(const transfer_settings&) {
  transfer_result r;
  r.available = false;
  r.note = "UDT unavailable: libudt-dev (udt/udt.h, libudt) was not found when this was built";
  return r;
}

}  // namespace kadnet::bench

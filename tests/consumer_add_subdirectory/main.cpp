// Builds MobileNetV1 and V2 through add_subdirectory and checks the published counts.
#include <mobilenet/mobilenet.hpp>

#include <iostream>

int main() {
  int64_t v1 = 0, v2 = 0;
  for (const auto& p : mobilenet::MobileNetV1()->parameters()) v1 += p.numel();
  for (const auto& p : mobilenet::MobileNetV2()->parameters()) v2 += p.numel();
  std::cout << "MobileNetV1 " << v1 << ", MobileNetV2 " << v2 << " parameters\n";
  return v1 == 4231976 && v2 == 3504872 ? 0 : 1;
}

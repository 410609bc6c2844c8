// Builds MobileNetV1 and V2 through add_subdirectory and checks the published counts.
#include <mobilenet/data.hpp>
#include <mobilenet/mobilenet.hpp>

#include <iostream>

int main() {
  int64_t v1 = 0, v2 = 0;
  for (const auto& p : mobilenet::MobileNetV1()->parameters()) v1 += p.numel();
  for (const auto& p : mobilenet::MobileNetV2()->parameters()) v2 += p.numel();
  // mobilenet::data links the decoders: parse a tiny COCO file in memory.
  auto coco = mobilenet::parse_coco(
      R"({"images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 90}],
          "categories": [{"id": 90, "name": "toothbrush"}]})",
      "inline.json");
  std::cout << "MobileNetV1 " << v1 << ", MobileNetV2 " << v2 << " parameters, "
            << coco.num_classes() << " class\n";
  return v1 == 4231976 && v2 == 3504872 ? 0 : 1;
}

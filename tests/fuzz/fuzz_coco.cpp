// libFuzzer target for the COCO annotation and label-map parsers: any byte string must parse
// or raise mobilenet::CocoError, never crash, hang or read out of bounds. It is also a
// differential check: the windowed reader (with a window picked by the input) must either
// give up or read exactly what the whole-document reader reads.
//   clang++ -fsanitize=fuzzer,address ... fuzz_coco.cpp && ./fuzz_coco -max_total_time=60
#include <mobilenet/data/coco.hpp>
#include <mobilenet/data/label_map.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mobilenet::detail;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const simdjson::padded_string json(text);
  std::vector<mobilenet::CocoImage> wi, ai;
  std::vector<mobilenet::CocoCategory> wc, ac;
  std::vector<CocoRawAnnotation> wr, ar;
  const size_t window = size ? data[0] % 64 : 1;
  const bool windowed = coco_read_windowed(json, "<fuzz>", wi, wc, wr, window);
  bool whole = true;
  try {
    coco_read_whole(json, "<fuzz>", ai, ac, ar);
  } catch (const mobilenet::CocoError&) {
    whole = false;
  }
  if (windowed) {
    if (!whole || wi.size() != ai.size() || wc.size() != ac.size() || wr.size() != ar.size())
      std::abort();
    for (size_t k = 0; k < wr.size(); ++k)
      if (wr[k].id != ar[k].id || wr[k].image_id != ar[k].image_id ||
          wr[k].category_id != ar[k].category_id || wr[k].crowd != ar[k].crowd)
        std::abort();
    for (size_t k = 0; k < wi.size(); ++k)
      if (wi[k].id != ai[k].id || wi[k].file_name != ai[k].file_name) std::abort();
  }
  try {
    auto ds = mobilenet::parse_coco(text, "<fuzz>",
                                    mobilenet::CocoOptions().ignore_crowd(size % 2).keep_empty_images(size % 3));
    (void)ds.samples("dir");
  } catch (const mobilenet::CocoError&) {
  }
  try {
    auto map = mobilenet::LabelMap::parse(json, "<fuzz>");
    (void)map.num_classes();
  } catch (const mobilenet::CocoError&) {
  }
  return 0;
}

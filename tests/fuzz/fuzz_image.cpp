// libFuzzer target for the image decoder and the transform pipeline: any byte string must
// decode or raise mobilenet::ImageError, never crash, hang or read out of bounds.
//   clang++ -fsanitize=fuzzer,address ... fuzz_image.cpp && ./fuzz_image -max_total_time=60
#include <mobilenet/data/transforms.hpp>

#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Huge-but-legal headers would only measure the allocator; the size check itself is
  // covered because probe_image runs first.
  constexpr int64_t kMaxFuzzPixels = int64_t(1) << 22;
  try {
    mobilenet::ImageInfo info = mobilenet::probe_image(data, size, "<fuzz>");
    // Divided, not multiplied: a PNG header's 32-bit sides overflow int64 when multiplied.
    if (info.size.width > 0 && info.size.height > kMaxFuzzPixels / info.size.width) return 0;
    torch::Tensor rgb = mobilenet::decode_image(data, size, "<fuzz>");
    (void)rgb;
    static const mobilenet::Transform transform =
        mobilenet::Transform().random_resized_crop(32).horizontal_flip().normalize();
    std::vector<float> out(32 * 32 * 3);
    transform.apply_bytes_into(data, size, "<fuzz>", size, out.data());
  } catch (const mobilenet::ImageError&) {
  }
  return 0;
}

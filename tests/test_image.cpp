// Image decoding and transforms against PIL and torchvision.
//
// tests/python/image_fixtures.py (run here with /usr/bin/python3) writes the test images —
// grayscale, CMYK, progressive, PNG named .jpg, truncated, empty, garbage, a scan cut short,
// a scan bomb, huge headers — and PIL's / torchvision's outputs for them. Tolerances: decodes
// (full and DCT-scaled) and resizes are bit-exact against PIL 9.4 (same libjpeg-turbo, same
// fixed-point resampling recipe), with the AVX2 resampler when the CPU has it (and that
// equals the scalar one byte for byte); region decoding gives exactly the whole decode's
// transform output; torchvision float pipelines match to float rounding (1e-5 after
// normalisation, 1e-6 before).
#include <doctest/doctest.h>

#include <mobilenet/data/image.hpp>
#include <mobilenet/data/transforms.hpp>

#include "fixtures.hpp"
#include "support.hpp"

#include <torch/torch.h>
#include <turbojpeg.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using mobilenet::test::FixtureSet;
using mobilenet::test::max_abs_diff;
using mobilenet::test::max_abs_diff_f;
using mobilenet::test::Ref;

const FixtureSet& fixtures() {
  static FixtureSet f("image_fixtures.py", "image_fixtures", 20);
  return f;
}



void check_image_error(const std::string& file) {
  const std::string p = fixtures().path(file);
  try {
    mobilenet::decode_image(p);
    FAIL("expected ImageError for " << file);
  } catch (const mobilenet::ImageError& e) {
    CHECK(e.path() == p);
    CHECK(std::string(e.what()).find(p) != std::string::npos);
  }
}

// The plan of a torchvision-style crop-then-resize: integer box, filter confined to it.
mobilenet::GeometryPlan crop_plan(int64_t l, int64_t t, int64_t w, int64_t h,
                                          int64_t out_h, int64_t out_w) {
  mobilenet::GeometryPlan p;
  p.box = {double(l), double(t), double(l + w), double(t + h)};
  p.cx0 = l;
  p.cy0 = t;
  p.cx1 = l + w;
  p.cy1 = t + h;
  p.out_h = out_h;
  p.out_w = out_w;
  return p;
}

}  // namespace

TEST_CASE("decode_image matches PIL exactly for baseline, odd-size, grayscale, CMYK, "
          "progressive JPEGs and PNGs (including RGBA, palette and a PNG named .jpg)") {
  for (const char* file : {"base.jpg", "odd.jpg", "gray.jpg", "cmyk.jpg", "progressive.jpg",
                           "png_named.jpg", "rgba.png", "palette.png"}) {
    CAPTURE(file);
    std::string name = std::string("decode_") + file;
    for (char& c : name)
      if (c == '.') c = '_';
    torch::Tensor ours = mobilenet::decode_image(fixtures().path(file));
    CHECK((ours.scalar_type() == torch::kUInt8));
    CHECK(ours.dim() == 3);
    CHECK(ours.size(2) == 3);
    CHECK(max_abs_diff(ours, fixtures().load(name)) == 0);
  }
}

TEST_CASE("a YCCK JPEG (written by TurboJPEG from CMYK pixels) decodes like PIL") {
  const int w = 96, h = 64;
  std::vector<uint8_t> cmyk(size_t(w * h * 4));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 4; ++c)
        cmyk[size_t((y * w + x) * 4 + c)] = uint8_t((x * 2 + y * 3 + c * 50) % 256);
  tjhandle tj = tjInitCompress();
  REQUIRE(tj != nullptr);
  unsigned char* jpeg = nullptr;
  unsigned long jpeg_size = 0;
  REQUIRE(tjCompress2(tj, cmyk.data(), w, 0, h, TJPF_CMYK, &jpeg, &jpeg_size, TJSAMP_420, 90,
                      0) == 0);
  const std::string p = fixtures().path("ycck.jpg");
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<char*>(jpeg), jpeg_size);
  tjFree(jpeg);
  tjDestroy(tj);
  int width, height, subsamp, colorspace;
  {
    std::ifstream in(p, std::ios::binary);
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
    tjhandle d = tjInitDecompress();
    REQUIRE(tjDecompressHeader3(d, bytes.data(), bytes.size(), &width, &height, &subsamp,
                                &colorspace) == 0);
    tjDestroy(d);
  }
  CHECK(colorspace == TJCS_YCCK);
  const std::string ref = fixtures().path("ycck_ref.bin");
  REQUIRE(mobilenet::test::run_python("image_fixtures.py", {"--decode", p, ref}) == 0);
  torch::Tensor expected = torch::empty({h, w, 3}, torch::kUInt8);
  std::ifstream in(ref, std::ios::binary);
  in.read(static_cast<char*>(expected.data_ptr()), std::streamsize(expected.nbytes()));
  REQUIRE(in.gcount() == std::streamsize(expected.nbytes()));
  CHECK(max_abs_diff(mobilenet::decode_image(p), expected) == 0);
}

TEST_CASE("decode_image raises ImageError naming the file for empty, truncated, garbage, "
          "header-only and missing files and for directories") {
  for (const char* file :
       {"empty.jpg", "truncated.jpg", "header_only.jpg", "garbage.jpg", "truncated.png"}) {
    CAPTURE(file);
    check_image_error(file);
  }
  check_image_error("does_not_exist.jpg");
  check_image_error("");  // the fixture directory itself
}

TEST_CASE("decode_image on JPEG data with injected markers throws ImageError or decodes, "
          "never crashes") {
  try {
    torch::Tensor t = mobilenet::decode_image(fixtures().path("corrupt.jpg"));
    CHECK(t.size(2) == 3);
  } catch (const mobilenet::ImageError& e) {
    CHECK(e.path() == fixtures().path("corrupt.jpg"));
  }
}

TEST_CASE("DCT-scaled decode picks the smallest scale that keeps the requested size and "
          "matches PIL's draft decode") {
  for (const char* name : {"draft_320x240", "draft_160x120", "draft_100x70", "draft_80x60"}) {
    CAPTURE(name);
    const Ref& r = fixtures().ref(name);
    mobilenet::ImageSize min{int64_t(r.extra[0]), int64_t(r.extra[1])};
    torch::Tensor ours = mobilenet::decode_image(fixtures().path("base.jpg"), min);
    CHECK(ours.size(0) >= min.height);
    CHECK(ours.size(1) >= min.width);
    // Our scales are PIL's draft scales (1/8, 1/4, 1/2, 1): the same pixels.
    CHECK(ours.size(0) == r.dims[0]);
    CHECK(max_abs_diff(ours, fixtures().load(name)) == 0);
  }
  // The whole image is smaller than the hint: full resolution.
  CHECK(mobilenet::decode_image(fixtures().path("base.jpg"), {1000, 1000}).size(1) == 640);
  // 500 wide needs more than 1/2 (320): full scale, never the slow 5/8 .. 7/8 IDCTs.
  CHECK(mobilenet::decode_image(fixtures().path("base.jpg"), {10, 500}).size(1) == 640);
  CHECK(mobilenet::decode_image(fixtures().path("base.jpg"), {10, 300}).size(1) == 320);
}

TEST_CASE("Transform::decode_only decodes what the transform resamples: PIL's draft "
          "pixels at the DCT scale the output size allows") {
  const std::string path = fixtures().path("base.jpg");  // 640x480
  const std::vector<uint8_t> bytes = mobilenet::read_file(path);
  // 224x224 from 640x480 needs 1/2 (320x240); 256 rows need the full scale.
  const auto half = mobilenet::Transform().resize(224, 224).normalize().decode_only(
      bytes.data(), bytes.size(), path, 7);
  CHECK(half.scaled_size().width == 320);
  CHECK(half.pixels.size(0) == 240);
  CHECK(half.pixels.size(1) == 320);
  CHECK(max_abs_diff(half.pixels, fixtures().load("draft_320x240")) == 0);
  const auto full = mobilenet::Transform().resize(256, 256).decode_only(bytes.data(),
                                                                         bytes.size(), path, 7);
  CHECK(full.scaled_size().width == 640);
  CHECK(max_abs_diff(full.pixels, mobilenet::decode_image(path)) == 0);
  // Bad bytes name the file.
  const std::vector<uint8_t> junk{0xff, 0xd8, 0xff, 0x00};
  try {
    mobilenet::Transform().resize(8, 8).decode_only(junk.data(), junk.size(), "junk.jpg", 0);
    FAIL("no error for junk bytes");
  } catch (const mobilenet::ImageError& e) {
    CHECK(e.path() == "junk.jpg");
  }
}

TEST_CASE("antialiased bilinear resize matches PIL.Image.resize exactly, including "
          "fractional boxes") {
  for (int i = 0; i < 7; ++i) {
    std::string name = "resize_" + std::to_string(i);
    CAPTURE(name);
    const Ref& r = fixtures().ref(name);
    std::string file = r.kind.substr(r.kind.find(':') + 1);
    torch::Tensor img = mobilenet::decode_image(fixtures().path(file));
    mobilenet::GeometryPlan p;
    p.box = {r.extra[0], r.extra[1], r.extra[2], r.extra[3]};
    p.cx1 = img.size(1);
    p.cy1 = img.size(0);
    p.out_h = r.dims[0];
    p.out_w = r.dims[1];
    torch::Tensor ours = mobilenet::Transform::resample(
        {img, {img.size(0), img.size(1)}}, p);
    CHECK(max_abs_diff(ours, fixtures().load(name)) == 0);
  }
}

TEST_CASE("crop then resize matches PIL's crop().resize() exactly") {
  torch::Tensor img = mobilenet::decode_image(fixtures().path("base.jpg"));
  for (int i = 0; i < 4; ++i) {
    std::string name = "crop_" + std::to_string(i);
    CAPTURE(name);
    const Ref& r = fixtures().ref(name);
    auto p = crop_plan(int64_t(r.extra[0]), int64_t(r.extra[1]), int64_t(r.extra[2]),
                       int64_t(r.extra[3]), r.dims[0], r.dims[1]);
    torch::Tensor ours = mobilenet::Transform::resample({img, {img.size(0), img.size(1)}}, p);
    CHECK(max_abs_diff(ours, fixtures().load(name)) == 0);
  }
}

TEST_CASE("eval transform on a decoded image matches torchvision Resize(256) + "
          "CenterCrop(224) + ToTensor + Normalize to float rounding") {
  auto t = mobilenet::imagenet_eval_transform(224);
  for (const char* file : {"base.jpg", "odd.jpg"}) {
    CAPTURE(file);
    std::string name = std::string("eval_") + file;
    name[name.find('.')] = '_';
    torch::Tensor ours = t(mobilenet::decode_image(fixtures().path(file)), 0);
    CHECK((ours.sizes() == torch::IntArrayRef({3, 224, 224})));
    // Same uint8 pixels as PIL: only float rounding of (x / 255 - mean) / std differs.
    CHECK(max_abs_diff_f(ours, fixtures().load(name)) <= 1e-5);
  }
}

TEST_CASE("exact resize without normalisation matches torchvision Resize((h, w)) + "
          "ToTensor to float rounding") {
  auto t = mobilenet::Transform().resize(100, 150);
  for (const char* file : {"base.jpg", "odd.jpg"}) {
    CAPTURE(file);
    std::string name = std::string("resize_exact_") + file;
    name[name.find('.')] = '_';
    torch::Tensor ours = t(mobilenet::decode_image(fixtures().path(file)), 3);
    CHECK(max_abs_diff_f(ours, fixtures().load(name)) <= 1e-6);
  }
}

TEST_CASE("eval transform from the file (DCT-scaled decode) stays close to the full decode") {
  auto t = mobilenet::imagenet_eval_transform(224);
  const std::string p = fixtures().path("base.jpg");
  torch::Tensor from_file = t(p, 0);
  torch::Tensor full = t(mobilenet::decode_image(p), 0);
  // 640x480 -> shorter side 256 lets the decoder work at 1/2 (320x240).
  double mean_diff = (from_file - full).abs().mean().item<double>() * 0.226 * 255.0;
  CHECK(mean_diff < 3.0);  // mean absolute difference in grey levels
}

TEST_CASE("colour jitter components match torchvision's adjust_brightness, contrast, "
          "saturation and hue") {
  torch::Tensor input = fixtures().load("jitter_input").permute({1, 2, 0}).contiguous();
  const int64_t n = input.size(0) * input.size(1);
  for (const char* op : {"brightness", "contrast", "saturation", "hue", "hue_neg"}) {
    CAPTURE(op);
    const Ref& r = fixtures().ref(std::string("jitter_") + op);
    torch::Tensor x = input.clone();
    float f = float(r.extra[0]);
    std::string o = op;
    if (o == "brightness") mobilenet::detail::adjust_brightness(x.data_ptr<float>(), n, f);
    if (o == "contrast") mobilenet::detail::adjust_contrast(x.data_ptr<float>(), n, f);
    if (o == "saturation") mobilenet::detail::adjust_saturation(x.data_ptr<float>(), n, f);
    if (o.rfind("hue", 0) == 0) mobilenet::detail::adjust_hue(x.data_ptr<float>(), n, f);
    torch::Tensor expected = fixtures().load(std::string("jitter_") + op).permute({1, 2, 0});
    CHECK(max_abs_diff_f(x, expected) < 1e-4);
  }
}

TEST_CASE("random_resized_crop samples torchvision's ranges and falls back to the centre") {
  mobilenet::RandomResizedCropOptions o;
  int fallback_checked = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    mobilenet::SampleRng rng(seed);
    int64_t i, j, h, w;
    mobilenet::detail::random_resized_crop_params(480, 640, o, rng, i, j, h, w);
    REQUIRE(h > 0);
    REQUIRE(w > 0);
    CHECK(i >= 0);
    CHECK(j >= 0);
    CHECK(i + h <= 480);
    CHECK(j + w <= 640);
    const double area = double(h * w) / (480.0 * 640.0);
    CHECK(area >= 0.08 * 0.97);
    CHECK(area <= 1.0);
    const double ratio = double(w) / double(h);
    CHECK(ratio >= 0.75 * 0.97);
    CHECK(ratio <= 4.0 / 3.0 * 1.03);
  }
  // In a 3x300 strip no crop of >= 8% area has a ratio <= 4/3 (its height would be >= 7):
  // all 10 tries fail and the fallback is the central crop of ratio 4/3.
  for (uint64_t seed = 0; seed < 5; ++seed, ++fallback_checked) {
    mobilenet::SampleRng rng(seed);
    int64_t i, j, h, w;
    mobilenet::detail::random_resized_crop_params(3, 300, o, rng, i, j, h, w);
    CHECK(h == 3);
    CHECK(w == 4);  // round(3 * 4 / 3)
    CHECK(i == 0);
    CHECK(j == (300 - 4) / 2);
  }
  CHECK(fallback_checked == 5);
}

TEST_CASE("transforms are deterministic under a seed and differ across seeds") {
  auto t = mobilenet::Transform()
               .random_resized_crop(64)
               .horizontal_flip()
               .color_jitter(mobilenet::ColorJitterOptions().brightness(0.4).contrast(0.4)
                                 .saturation(0.4).hue(0.1))
               .normalize();
  const std::string p = fixtures().path("base.jpg");
  const uint64_t s = mobilenet::sample_seed(7, 2, 11);
  torch::Tensor a = t(p, s), b = t(p, s), c = t(p, mobilenet::sample_seed(7, 3, 11));
  CHECK((a.sizes() == torch::IntArrayRef({3, 64, 64})));
  CHECK(torch::equal(a, b));
  CHECK(!torch::equal(a, c));
  CHECK(mobilenet::sample_seed(7, 2, 11) != mobilenet::sample_seed(7, 2, 12));
  CHECK(mobilenet::sample_seed(7, 2, 11) != mobilenet::sample_seed(8, 2, 11));
}

TEST_CASE("horizontal flip with p = 1 mirrors the unflipped output") {
  const std::string p = fixtures().path("odd.jpg");
  torch::Tensor plain = mobilenet::Transform().resize(64, 80)(p, 1);
  torch::Tensor flipped = mobilenet::Transform().resize(64, 80).horizontal_flip(1.0)(p, 1);
  CHECK(torch::equal(flipped, plain.flip({2})));
}

TEST_CASE("random-resized-crop from the file never decodes coarser than its crop needs") {
  auto t = mobilenet::Transform().random_resized_crop(256);
  mobilenet::ImageSize full{480, 640};
  for (uint64_t seed = 0; seed < 200; ++seed) {
    mobilenet::SampleRng rng(seed);
    auto plan = t.plan(full, rng);
    mobilenet::detail::JpegScale f = mobilenet::detail::choose_jpeg_scale(
        full, plan.box.y1 - plan.box.y0, plan.box.x1 - plan.box.x0, {256, 256});
    const double sx = double(mobilenet::detail::jpeg_scaled(640, f)) / 640.0;
    const double sy = double(mobilenet::detail::jpeg_scaled(480, f)) / 480.0;
    const double cw = (plan.box.x1 - plan.box.x0), ch = (plan.box.y1 - plan.box.y0);
    if (cw >= 256 && ch >= 256) {
      CHECK(cw * sx >= 256 - 1e-6);  // decoded crop still has the output resolution
      CHECK(ch * sy >= 256 - 1e-6);
    } else {
      CHECK(f.num == f.denom);  // crop needs upsampling: decode at full resolution
    }
  }
}

TEST_CASE("Transform reports a fixed output size only when it ends with a crop or exact "
          "resize, and rejects bad arguments") {
  CHECK(mobilenet::imagenet_train_transform(224).fixed_output_size()->height == 224);
  CHECK(mobilenet::imagenet_eval_transform(224).fixed_output_size()->width == 224);
  CHECK(!mobilenet::Transform().resize(256).fixed_output_size().has_value());
  CHECK(!mobilenet::Transform().fixed_output_size().has_value());
  CHECK_THROWS(mobilenet::Transform().random_resized_crop(0));
  CHECK_THROWS(mobilenet::Transform().horizontal_flip(2.0));
  CHECK_THROWS(mobilenet::Transform().color_jitter(mobilenet::ColorJitterOptions().hue(0.7)));
  CHECK_THROWS(mobilenet::Transform().normalize({0, 0, 0}, {1, 0, 1}));
  // Shorter-side resize keeps the aspect ratio like torchvision: 640x480 -> 341x256.
  torch::Tensor r = mobilenet::Transform().resize(256)(fixtures().path("base.jpg"), 0);
  CHECK((r.sizes() == torch::IntArrayRef({3, 256, 341})));
}

// ---------------------------------------------------------------------------------------
// Reliability (issue 11): bad files never affect other files, never hang, never cost more
// memory than the pixel budget, and are named safely.

namespace {

// A JPEG of the base fixture's pixels with the given chroma subsampling, written by
// TurboJPEG (PIL cannot write 4:4:0 or 4:1:1).
std::string write_subsampled(const std::string& name, int subsamp) {
  torch::Tensor rgb = mobilenet::decode_image(fixtures().path("base.jpg"));
  tjhandle tj = tjInitCompress();
  REQUIRE(tj != nullptr);
  unsigned char* jpeg = nullptr;
  unsigned long jpeg_size = 0;
  REQUIRE(tjCompress2(tj, rgb.data_ptr<uint8_t>(), int(rgb.size(1)), 0, int(rgb.size(0)),
                      TJPF_RGB, &jpeg, &jpeg_size, subsamp, 90, 0) == 0);
  const std::string p = fixtures().path(name);
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<char*>(jpeg), jpeg_size);
  tjFree(jpeg);
  tjDestroy(tj);
  return p;
}

std::vector<uint8_t> bytes_of(const std::string& path) { return mobilenet::read_file(path); }

}  // namespace

TEST_CASE("a corrupt JPEG never breaks the next decode on the same thread") {
  // libturbojpeg 2.1.5 kept a per-thread handle broken after "missing SOS marker": every
  // later valid file then read as 0x0 or "Bogus marker length".
  const torch::Tensor expected = fixtures().load("decode_base_jpg");
  for (const char* bad : {"header_only.jpg", "truncated.jpg", "truncated_scan.jpg",
                          "garbage.jpg", "corrupt.jpg", "huge_header.jpg", "many_scans.jpg"}) {
    CAPTURE(bad);
    try {
      mobilenet::decode_image(fixtures().path(bad));
    } catch (const mobilenet::ImageError&) {
    }
    CHECK(max_abs_diff(mobilenet::decode_image(fixtures().path("base.jpg")), expected) == 0);
    // The transform path (the loader's) as well.
    auto t = mobilenet::Transform().resize(48, 64);
    try {
      t(fixtures().path(bad), 0);
    } catch (const mobilenet::ImageError&) {
    }
    CHECK(t(fixtures().path("base.jpg"), 0).size(2) == 64);
  }
}

TEST_CASE("a JPEG cut short is an ImageError naming the file, a crop of it never gets grey "
          "padding, and extraneous bytes before a marker stay accepted like PIL") {
  // A scan cut short and closed by an end marker: libjpeg warns "premature end of data
  // segment" (TurboJPEG's message was matched case-sensitively, so it passed as grey).
  const std::string p = fixtures().path("truncated_scan.jpg");
  try {
    mobilenet::decode_image(p);
    FAIL("a truncated scan decoded");
  } catch (const mobilenet::ImageError& e) {
    CHECK(e.path() == p);
    CHECK(std::string(e.what()).find("premature end of data segment") != std::string::npos);
  }
  CHECK_THROWS_AS(mobilenet::decode_image(p, {60, 80}), mobilenet::ImageError);  // 1/8 scale
  // Crops decode only the rows they need: one above the cut must equal the same crop of the
  // intact file, one reaching it must fail.
  auto t = mobilenet::Transform().random_resized_crop(64);
  std::vector<float> out(64 * 64 * 3);
  const std::vector<uint8_t> bytes = bytes_of(p);
  const std::vector<uint8_t> intact = bytes_of(fixtures().path("base.jpg"));
  std::vector<float> expected(out.size());
  int failed = 0, passed = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    CAPTURE(seed);
    try {
      t.apply_bytes_into(bytes.data(), bytes.size(), p, seed, out.data());
      t.apply_bytes_into(intact.data(), intact.size(), "base.jpg", seed, expected.data());
      CHECK(out == expected);
      ++passed;
    } catch (const mobilenet::ImageError& e) {
      CHECK(e.path() == p);
      ++failed;
    }
  }
  CHECK(failed >= 10);
  CHECK(passed >= 10);
  // A file cut without an end marker fails whichever rows a crop needs.
  const std::string cut = fixtures().path("truncated.jpg");
  const std::vector<uint8_t> cut_bytes = bytes_of(cut);
  for (uint64_t seed = 0; seed < 40; ++seed) {
    CAPTURE(seed);
    CHECK_THROWS_WITH_AS(t.apply_bytes_into(cut_bytes.data(), cut_bytes.size(), cut, seed,
                                            out.data()),
                         doctest::Contains("Premature end of JPEG file"), mobilenet::ImageError);
  }
  CHECK(max_abs_diff(mobilenet::decode_image(fixtures().path("extraneous.jpg")),
                     fixtures().load("decode_extraneous_jpg")) == 0);
}

TEST_CASE("the pixel budget refuses huge images from the header, names file, size and "
          "limit, and can be raised") {
  CHECK(mobilenet::kDefaultMaxImagePixels == 16777216);
  // 261 KB of PNG declaring 16384x16384: about 1 GB once decoded.
  for (const char* file : {"huge.png", "huge_header.jpg"}) {
    CAPTURE(file);
    const std::string p = fixtures().path(file);
    const std::string size = std::string(file) == "huge.png" ? "16384x16384" : "9000x9000";
    try {
      mobilenet::decode_image(p);
      FAIL("decoded " << file);
    } catch (const mobilenet::ImageError& e) {
      const std::string what = e.what();
      CHECK(e.path() == p);
      CHECK(what.find(size) != std::string::npos);
      CHECK(what.find("16777216") != std::string::npos);
    }
    const std::vector<uint8_t> bytes = bytes_of(p);
    CHECK_THROWS_AS(mobilenet::probe_image(bytes.data(), bytes.size(), p), mobilenet::ImageError);
    std::vector<float> out(32 * 32 * 3);
    CHECK_THROWS_AS(mobilenet::Transform().resize(32, 32).apply_bytes_into(
                        bytes.data(), bytes.size(), p, 0, out.data()),
                    mobilenet::ImageError);
  }
  // A limit of exactly 640 x 480 accepts the base image; one pixel less refuses it.
  const std::string base = fixtures().path("base.jpg");
  CHECK(mobilenet::decode_image(base, mobilenet::DecodeOptions().max_pixels(640 * 480))
            .size(1) == 640);
  CHECK_THROWS_WITH_AS(
      mobilenet::decode_image(base, mobilenet::DecodeOptions().max_pixels(640 * 480 - 1)),
      doctest::Contains("640x480 pixels exceeds the limit of 307199"), mobilenet::ImageError);
  CHECK_THROWS_AS(mobilenet::Transform().resize(32, 32).max_image_pixels(1000)(base, 0),
                  mobilenet::ImageError);
  CHECK(mobilenet::Transform().resize(32, 32).max_image_pixels(640 * 480)(base, 0).size(1) ==
        32);
  CHECK_THROWS(mobilenet::Transform().max_image_pixels(0));
}

TEST_CASE("a progressive JPEG with more than 500 scans (a scan bomb) is refused") {
  // The first scan of a small progressive file, repeated 600 times: libjpeg only warns.
  CHECK_THROWS_WITH_AS(mobilenet::decode_image(fixtures().path("many_scans.jpg")),
                       doctest::Contains("more than 500 scans"), mobilenet::ImageError);
  CHECK(mobilenet::decode_image(fixtures().path("progressive_small.jpg")).size(1) == 333);
}

TEST_CASE("a FIFO, a directory or a device named as an image is refused without opening it") {
  mobilenet::test::TempDir dir("image-fifo");
  const std::string fifo = dir / "pipe.jpg";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening a FIFO for reading blocks until a writer appears: run the decode aside, and if
  // it hangs, be the writer so the test ends (and fails) instead of hanging.
  auto result = std::async(std::launch::async, [&] {
    try {
      mobilenet::decode_image(fifo);
      return std::string("decoded");
    } catch (const mobilenet::ImageError& e) {
      return std::string(e.what());
    }
  });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    FAIL_CHECK("decode_image blocked on a FIFO");
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    if (fd >= 0) ::close(fd);
  }
  CHECK(result.get().find("not a regular file (a FIFO)") != std::string::npos);
  CHECK_THROWS_WITH_AS(mobilenet::decode_image(dir.path().string()),
                       doctest::Contains("not a regular file (a directory)"),
                       mobilenet::ImageError);
  CHECK_THROWS_WITH_AS(mobilenet::decode_image("/dev/null"),
                       doctest::Contains("not a regular file (a character device)"),
                       mobilenet::ImageError);
  CHECK_THROWS_WITH_AS(mobilenet::decode_image(dir / "missing.jpg"),
                       doctest::Contains("No such file or directory"), mobilenet::ImageError);
}

TEST_CASE("escape_path escapes control characters, C1 controls and backslashes, and "
          "ImageError messages use it") {
  CHECK(mobilenet::escape_path("plain/dir/ok é.jpg") == "plain/dir/ok é.jpg");
  CHECK(mobilenet::escape_path("a\nb\tc\rd") == "a\\nb\\tc\\rd");
  CHECK(mobilenet::escape_path(std::string("nul\0x", 5)) == "nul\\x00x");
  CHECK(mobilenet::escape_path("\x1b[31mred\x7f") == "\\x1B[31mred\\x7F");
  CHECK(mobilenet::escape_path("c1\xc2\x9b") == "c1\\u009B");
  CHECK(mobilenet::escape_path("back\\slash") == "back\\\\slash");
  mobilenet::test::TempDir dir("image-names");
  const std::string p = dir / "bad\nname\x1b[2J.jpg";
  std::ofstream(p, std::ios::binary) << "not an image";
  try {
    mobilenet::decode_image(p);
    FAIL("decoded garbage");
  } catch (const mobilenet::ImageError& e) {
    const std::string what = e.what();
    CHECK(e.path() == p);  // the raw name, for programs
    CHECK(what.find('\n') == std::string::npos);
    CHECK(what.find('\x1b') == std::string::npos);
    CHECK(what.find("bad\\nname\\x1B[2J.jpg") != std::string::npos);
  }
}

TEST_CASE("escape_text keeps backslashes for already escaped text and writes JSON string "
          "contents that a JSON parser reads back") {
  using mobilenet::EscapeStyle;
  using mobilenet::escape_text;
  CHECK(escape_text("a\\x01\n\x02", EscapeStyle::terminal_keep_backslash) == "a\\x01\\n\\x02");
  CHECK(escape_text("say \"hi\"\\\n\x7f\xc2\x85 é", EscapeStyle::json) ==
        "say \\\"hi\\\"\\\\\\u000A\\u007F\\u0085 é");
  CHECK(escape_text("plain", EscapeStyle::json) == "plain");
}

TEST_CASE("region decoding (crop and skipped rows) gives exactly the transform output of a "
          "whole decode at the same scale, for every subsampling") {
  std::vector<std::string> files;
  for (const char* f : {"base.jpg", "odd.jpg", "sub422.jpg", "progressive.jpg", "gray.jpg",
                        "cmyk.jpg"})
    files.push_back(fixtures().path(f));
  files.push_back(write_subsampled("sub440.jpg", TJSAMP_440));
  files.push_back(write_subsampled("sub411.jpg", TJSAMP_411));  // not cropped: whole rows
  int narrower = 0, shorter = 0;
  for (const std::string& p : files) {
    CAPTURE(p);
    const std::vector<uint8_t> bytes = bytes_of(p);
    const mobilenet::ImageInfo info = mobilenet::probe_image(bytes.data(), bytes.size(), p);
    for (int64_t size : {32, 96, 224}) {
      auto t = mobilenet::Transform().random_resized_crop(size);
      for (uint64_t seed = 0; seed < 12; ++seed) {
        CAPTURE(size);
        CAPTURE(seed);
        mobilenet::SampleRng rng(seed);
        const auto plan = t.plan(info.size, rng);
        const mobilenet::detail::ResampleSpec spec{
            plan.box, {plan.cx0, plan.cy0, plan.cx1, plan.cy1}, plan.out_h, plan.out_w};
        const auto window = mobilenet::detail::decode_for_resample(
            bytes.data(), bytes.size(), p, info, spec, {});
        const auto whole = mobilenet::decode_image_region(
            bytes.data(), bytes.size(), p, plan.box.y1 - plan.box.y0,
            plan.box.x1 - plan.box.x0, {plan.out_h, plan.out_w});
        REQUIRE(window.scaled_size().width == whole.pixels.size(1));
        REQUIRE(window.scaled_size().height == whole.pixels.size(0));
        narrower += window.pixels.size(1) < whole.pixels.size(1);
        shorter += window.pixels.size(0) < whole.pixels.size(0);
        CHECK(torch::equal(mobilenet::Transform::resample(window, plan),
                           mobilenet::Transform::resample(whole, plan)));
      }
    }
  }
  CHECK(narrower > 50);  // the crops really decoded less
  CHECK(shorter > 50);
}

TEST_CASE("the AVX2 resampler gives the scalar resampler's bytes for down- and upscaling, "
          "fractional boxes, clips and windows, and with flip both give the mirrored bytes") {
  torch::Tensor img = mobilenet::decode_image(fixtures().path("odd.jpg"));  // 333 x 251
  const int64_t h = img.size(0), w = img.size(1);
  mobilenet::SampleRng rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    CAPTURE(trial);
    mobilenet::detail::ResampleSpec s;
    const double bw = rng.uniform(1, double(w)), bh = rng.uniform(1, double(h));
    s.box.x0 = rng.uniform(0, double(w) - bw);
    s.box.y0 = rng.uniform(0, double(h) - bh);
    s.box.x1 = s.box.x0 + bw;
    s.box.y1 = s.box.y0 + bh;
    // Half the trials read only inside the box (crop-then-resize), half the whole image.
    if (trial % 2) {
      s.clip = {int64_t(std::floor(s.box.x0)), int64_t(std::floor(s.box.y0)),
                int64_t(std::ceil(s.box.x1)), int64_t(std::ceil(s.box.y1))};
    } else {
      s.clip = {0, 0, w, h};
    }
    // Output sizes from 1 pixel to 4x upscaling and 40x downscaling (several tap groups).
    s.out_w = rng.randint(1, 400);
    s.out_h = rng.randint(1, 300);
    // The input as a tight window around the footprint, so reads near its end are tested.
    const auto fp = mobilenet::detail::resample_footprint(s, w, h);
    torch::Tensor window = img.slice(0, fp.y0, fp.y1).slice(1, fp.x0, fp.x1).contiguous();
    const mobilenet::detail::RgbWindow in{window.data_ptr<uint8_t>(), fp.x0, fp.y0,
                                          window.size(1), window.size(0)};
    torch::Tensor a = torch::empty({s.out_h, s.out_w, 3}, torch::kUInt8);
    torch::Tensor b = torch::empty({s.out_h, s.out_w, 3}, torch::kUInt8);
    mobilenet::detail::resample_rgb(in, w, h, s, a.data_ptr<uint8_t>());
    mobilenet::detail::resample_rgb(in, w, h, s, b.data_ptr<uint8_t>(),
                                    mobilenet::detail::ResampleKernel::kScalar);
    REQUIRE(torch::equal(a, b));
    // The transform flips inside the resampler (reversed coefficients): it must equal
    // flipping the output afterwards, as PIL + torchvision do.
    s.flip = true;
    mobilenet::detail::resample_rgb(in, w, h, s, b.data_ptr<uint8_t>());
    REQUIRE(torch::equal(b, a.flip({1})));
    mobilenet::detail::resample_rgb(in, w, h, s, b.data_ptr<uint8_t>(),
                                    mobilenet::detail::ResampleKernel::kScalar);
    REQUIRE(torch::equal(b, a.flip({1})));
  }
}

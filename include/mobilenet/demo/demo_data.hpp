#pragma once
/// \file demo/demo_data.hpp
/// Writes a small synthetic multi-label data set in COCO format: coloured shapes on noisy
/// backgrounds, JPEG-encoded with TurboJPEG. Used by examples/make_demo_data and the tests.
/// Component `demo` (link mobilenet::demo): the only part of the library that needs TurboJPEG.
///
/// Layout written under `out`:
///   annotations/instances_train.json, annotations/instances_val.json,
///   train/<012d id>.jpg, val/<012d id>.jpg
/// Like COCO: category ids have gaps and are listed out of order, image and annotation ids are
/// increasing but not contiguous, some images have no annotation at all, and some annotations
/// are crowds (`iscrowd: 1`, a cluster of small instances with an uncompressed-RLE mask).

#include <mobilenet/data/random.hpp>

#include <torch/arg.h>
#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mobilenet {

/// What make_demo_data writes. Example: `DemoDataOptions().train(200).val(50).size(64)`.
struct DemoDataOptions {
  /// Number of training images. Default 1000.
  TORCH_ARG(int64_t, train) = 1000;
  /// Number of validation images. Default 200.
  TORCH_ARG(int64_t, val) = 200;
  /// Shorter image side in pixels; the longer side is up to a third larger. Default 96.
  TORCH_ARG(int64_t, size) = 96;
  /// Seed: the same seed writes byte-identical files. Default 0.
  TORCH_ARG(uint64_t, seed) = 0;
  /// JPEG quality 1..100. Default 90.
  TORCH_ARG(int, quality) = 90;
  /// Fraction of images without any object. Default 0.12.
  TORCH_ARG(double, empty_fraction) = 0.12;
  /// Fraction of non-empty images that also get one crowd annotation. Default 0.1.
  TORCH_ARG(double, crowd_fraction) = 0.1;
  /// Fraction of objects placed across an image border (centre 0.3-0.5 radius inside an edge,
  /// so about a third of the shape is cut off), as in photos where labelled objects touch the
  /// border: a center crop then cuts them away. Default 0 (earlier files stay byte-identical).
  TORCH_ARG(double, border_fraction) = 0.0;
};

/// One demo class: a shape drawn in one colour, so a small CNN separates classes quickly.
struct DemoClass {
  int64_t id;
  const char* name;
  std::array<uint8_t, 3> rgb;
};

/// The demo classes in the order they are listed in the JSON (deliberately not by id).
inline const std::vector<DemoClass>& demo_classes() {
  static const std::vector<DemoClass> classes = {
      {12, "triangle", {40, 80, 235}},  {3, "circle", {225, 35, 35}},
      {90, "diamond", {30, 205, 215}},  {7, "square", {35, 190, 60}},
      {44, "ring", {215, 45, 205}},     {25, "cross", {240, 215, 35}},
  };
  return classes;
}

/// Counts of what one split holds, for printing and tests.
struct DemoSplitSummary {
  std::string annotation_file;
  std::string image_dir;
  int64_t images = 0;
  int64_t empty_images = 0;
  int64_t annotations = 0;
  int64_t crowd_annotations = 0;
};

namespace detail {
namespace demo {

// The data pipeline's generator (data/random.hpp), seeded apart from sample_seed's streams.
class Rng {
 public:
  explicit Rng(uint64_t seed) : rng_(seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL) {}
  double uniform(double lo = 0.0, double hi = 1.0) { return rng_.uniform(lo, hi); }
  int64_t below(int64_t n) { return rng_.randint(0, n); }

 private:
  SampleRng rng_;
};

constexpr double kPi = 3.14159265358979323846;

struct Pt {
  double x, y;
};
using Ring = std::vector<Pt>;

struct Image {
  int64_t w, h;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel
};

inline Ring regular(double cx, double cy, double r, int n, double angle) {
  Ring ring;
  for (int i = 0; i < n; ++i) {
    const double a = angle + 2.0 * kPi * i / n;
    ring.push_back({cx + r * std::cos(a), cy + r * std::sin(a)});
  }
  return ring;
}

inline Ring transformed(const std::vector<Pt>& unit, double cx, double cy, double r,
                        double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  Ring ring;
  for (const Pt& p : unit) ring.push_back({cx + r * (c * p.x - s * p.y), cy + r * (s * p.x + c * p.y)});
  return ring;
}

// The outline(s) of one shape; filled with the even-odd rule, so the ring's inner circle
// makes a hole. The first ring is the outer boundary (the COCO polygon).
inline std::vector<Ring> shape_rings(const std::string& name, double cx, double cy, double r,
                                     double angle) {
  if (name == "circle") return {regular(cx, cy, r, 32, 0.0)};
  if (name == "ring") return {regular(cx, cy, r, 32, 0.0), regular(cx, cy, 0.55 * r, 32, 0.0)};
  if (name == "square") return {regular(cx, cy, r, 4, angle)};
  if (name == "triangle") return {regular(cx, cy, r, 3, angle)};
  if (name == "diamond")
    return {transformed({{0, -1}, {0.55, 0}, {0, 1}, {-0.55, 0}}, cx, cy, r, angle)};
  // cross: a plus sign with arms 0.3 r wide
  const double a = 0.3;
  return {transformed({{-a, -1}, {a, -1}, {a, -a}, {1, -a}, {1, a}, {a, a}, {a, 1}, {-a, 1},
                       {-a, a}, {-1, a}, {-1, -a}, {-a, -a}},
                      cx, cy, r, angle)};
}

inline bool inside(const std::vector<Ring>& rings, double x, double y) {
  bool in = false;
  for (const Ring& ring : rings) {
    for (size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++) {
      const Pt& a = ring[i];
      const Pt& b = ring[j];
      if ((a.y > y) != (b.y > y) && x < (b.x - a.x) * (y - a.y) / (b.y - a.y) + a.x) in = !in;
    }
  }
  return in;
}

// Paints the shape with 2x2 supersampling (soft edges look like photos after JPEG) and
// marks the pixels it covers at least half in `mask`.
inline void paint(Image& img, std::vector<uint8_t>& mask, const std::vector<Ring>& rings,
                  const std::array<double, 3>& colour) {
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  for (const Pt& p : rings.front()) {
    x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
  }
  const int64_t xa = std::max<int64_t>(0, static_cast<int64_t>(std::floor(x0)));
  const int64_t ya = std::max<int64_t>(0, static_cast<int64_t>(std::floor(y0)));
  const int64_t xb = std::min<int64_t>(img.w - 1, static_cast<int64_t>(std::ceil(x1)));
  const int64_t yb = std::min<int64_t>(img.h - 1, static_cast<int64_t>(std::ceil(y1)));
  for (int64_t y = ya; y <= yb; ++y) {
    for (int64_t x = xa; x <= xb; ++x) {
      int hits = 0;
      for (double dy : {0.25, 0.75})
        for (double dx : {0.25, 0.75}) hits += inside(rings, x + dx, y + dy);
      if (hits == 0) continue;
      const double cover = hits / 4.0;
      uint8_t* px = &img.rgb[3 * (y * img.w + x)];
      for (int c = 0; c < 3; ++c)
        px[c] = static_cast<uint8_t>(std::lround(px[c] * (1.0 - cover) + colour[c] * cover));
      if (hits >= 2) mask[y * img.w + x] = 1;
    }
  }
}

inline void background(Image& img, Rng& rng) {
  // Low-saturation tint at any brightness: dark ones are what coco_stats reports as "dark".
  const double level = rng.uniform(15, 235);
  std::array<double, 3> base{};
  for (double& b : base) b = level + rng.uniform(-25, 25);
  const double gx = rng.uniform(-30, 30), gy = rng.uniform(-30, 30);
  for (int64_t y = 0; y < img.h; ++y) {
    for (int64_t x = 0; x < img.w; ++x) {
      const double g = gx * (x / double(img.w) - 0.5) + gy * (y / double(img.h) - 0.5);
      for (int c = 0; c < 3; ++c) {
        const double v = base[c] + g + rng.uniform(-24, 24);
        img.rgb[3 * (y * img.w + x) + c] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  }
}

inline void write_jpeg(const Image& img, int quality, const std::string& path) {
  std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitCompress(), tjDestroy);
  if (!handle) throw std::runtime_error("make_demo_data: tjInitCompress failed");
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  if (tjCompress2(handle.get(), img.rgb.data(), static_cast<int>(img.w), 0,
                  static_cast<int>(img.h), TJPF_RGB, &buf, &size, TJSAMP_420, quality, 0) != 0) {
    tjFree(buf);
    throw std::runtime_error(std::string("make_demo_data: JPEG encoding failed for ") + path +
                             ": " + tjGetErrorStr2(handle.get()));
  }
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(buf, tjFree);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(buf), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("make_demo_data: cannot write " + path);
}

inline std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

struct Box {
  int64_t x0, y0, x1, y1, area;  // inclusive pixel bounds of the mask
};

inline Box mask_box(const std::vector<uint8_t>& mask, int64_t w, int64_t h) {
  Box b{w, h, -1, -1, 0};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      if (mask[y * w + x]) {
        b.x0 = std::min(b.x0, x), b.y0 = std::min(b.y0, y);
        b.x1 = std::max(b.x1, x), b.y1 = std::max(b.y1, y);
        ++b.area;
      }
  return b;
}

inline std::string bbox_json(const Box& b) {
  return "[" + std::to_string(b.x0) + "," + std::to_string(b.y0) + "," +
         std::to_string(b.x1 - b.x0 + 1) + "," + std::to_string(b.y1 - b.y0 + 1) + "]";
}

// COCO's uncompressed RLE: column-major runs, starting with a run of zeros.
inline std::string rle_json(const std::vector<uint8_t>& mask, int64_t w, int64_t h) {
  std::string counts;
  uint8_t current = 0;
  int64_t run = 0;
  for (int64_t x = 0; x < w; ++x)
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t v = mask[y * w + x];
      if (v != current) {
        counts += (counts.empty() ? "" : ",") + std::to_string(run);
        current = v;
        run = 0;
      }
      ++run;
    }
  counts += (counts.empty() ? "" : ",") + std::to_string(run);
  return "{\"counts\":[" + counts + "],\"size\":[" + std::to_string(h) + "," + std::to_string(w) +
         "]}";
}

}  // namespace demo
}  // namespace detail

/// Writes one split (`name` is "train" or "val") under `out`, continuing the image and
/// annotation id counters so ids are unique across splits (the splits can be merged).
inline DemoSplitSummary write_demo_split(const std::string& out, const std::string& name,
                                         int64_t count, const DemoDataOptions& options,
                                         detail::demo::Rng& rng, int64_t& image_id, int64_t& ann_id) {
  namespace fs = std::filesystem;
  using namespace detail::demo;
  const auto& classes = demo_classes();
  DemoSplitSummary summary;
  summary.image_dir = (fs::path(out) / name).string();
  summary.annotation_file = (fs::path(out) / "annotations" / ("instances_" + name + ".json")).string();
  fs::create_directories(summary.image_dir);
  fs::create_directories(fs::path(summary.annotation_file).parent_path());

  std::string images_json, anns_json;
  const int64_t s = options.size();
  for (int64_t i = 0; i < count; ++i) {
    image_id += 1 + rng.below(4);
    Image img;
    img.w = s + rng.below(s / 3 + 1);
    img.h = s + rng.below(s / 3 + 1);
    if (rng.uniform() < 0.5) std::swap(img.w, img.h);
    img.rgb.assign(static_cast<size_t>(3 * img.w * img.h), 0);
    background(img, rng);

    char file_name[32];
    std::snprintf(file_name, sizeof(file_name), "%012lld.jpg", static_cast<long long>(image_id));
    images_json += std::string(images_json.empty() ? "" : ",\n") + "  {\"id\":" +
                   std::to_string(image_id) + ",\"file_name\":\"" + file_name +
                   "\",\"width\":" + std::to_string(img.w) + ",\"height\":" +
                   std::to_string(img.h) + ",\"license\":1}";

    auto add_annotation = [&](const DemoClass& cls, const std::vector<uint8_t>& mask,
                              const std::string& segmentation, bool crowd) {
      const Box box = mask_box(mask, img.w, img.h);
      if (box.area == 0) return;
      anns_json += std::string(anns_json.empty() ? "" : ",\n") + "  {\"id\":" +
                   std::to_string(++ann_id) + ",\"image_id\":" + std::to_string(image_id) +
                   ",\"category_id\":" + std::to_string(cls.id) + ",\"iscrowd\":" +
                   (crowd ? "1" : "0") + ",\"area\":" + std::to_string(box.area) +
                   ",\"bbox\":" + bbox_json(box) + ",\"segmentation\":" + segmentation + "}";
      ++summary.annotations;
      summary.crowd_annotations += crowd;
    };
    auto jittered = [&](const DemoClass& cls) {
      std::array<double, 3> c{};
      for (int k = 0; k < 3; ++k) c[k] = std::clamp(cls.rgb[k] + rng.uniform(-20, 20), 0.0, 255.0);
      return c;
    };

    const bool empty = rng.uniform() < options.empty_fraction();
    summary.images++;
    summary.empty_images += empty;
    if (!empty) {
      const int objects = 1 + (rng.uniform() < 0.5) + (rng.uniform() < 0.2);
      std::vector<std::array<double, 3>> placed;  // cx, cy, r
      const double side = static_cast<double>(std::min(img.w, img.h));
      for (int o = 0; o < objects; ++o) {
        // Rejection-sample a spot that overlaps earlier shapes only a little: a fully hidden
        // shape would be a label the pixels do not support.
        for (int attempt = 0; attempt < 30; ++attempt) {
          const double r = side * rng.uniform(0.13, 0.27);
          double cx = rng.uniform(r, img.w - r), cy = rng.uniform(r, img.h - r);
          if (options.border_fraction() > 0 && rng.uniform() < options.border_fraction()) {
            // Across one of the four edges.
            const double d = r * rng.uniform(0.3, 0.5);
            switch (rng.below(4)) {
              case 0: cx = d; break;
              case 1: cx = img.w - d; break;
              case 2: cy = d; break;
              default: cy = img.h - d; break;
            }
          }
          bool ok = true;
          for (const auto& p : placed) ok = ok && std::hypot(cx - p[0], cy - p[1]) > 0.8 * (r + p[2]);
          if (!ok) continue;
          placed.push_back({cx, cy, r});
          const DemoClass& cls = classes[rng.below(static_cast<int64_t>(classes.size()))];
          const auto rings = shape_rings(cls.name, cx, cy, r, rng.uniform(0, 2 * kPi));
          std::vector<uint8_t> mask(static_cast<size_t>(img.w * img.h), 0);
          paint(img, mask, rings, jittered(cls));
          std::string polygon = "[[";
          for (size_t k = 0; k < rings.front().size(); ++k) {
            const Pt& p = rings.front()[k];
            polygon += (k ? "," : "") + num(std::clamp(p.x, 0.0, double(img.w))) + "," +
                       num(std::clamp(p.y, 0.0, double(img.h)));
          }
          polygon += "]]";
          add_annotation(cls, mask, polygon, false);
          break;
        }
      }
      if (rng.uniform() < options.crowd_fraction()) {
        // A crowd: several small instances of one class, one annotation with an RLE mask.
        const DemoClass& cls = classes[rng.below(static_cast<int64_t>(classes.size()))];
        std::vector<uint8_t> mask(static_cast<size_t>(img.w * img.h), 0);
        const double spread = 0.2 * side;
        const double gx = rng.uniform(spread, img.w - spread), gy = rng.uniform(spread, img.h - spread);
        const int64_t n = 5 + rng.below(5);
        for (int64_t k = 0; k < n; ++k) {
          const double r = side * rng.uniform(0.05, 0.08);
          const auto rings = shape_rings(cls.name, gx + rng.uniform(-spread, spread),
                                         gy + rng.uniform(-spread, spread), r,
                                         rng.uniform(0, 2 * kPi));
          paint(img, mask, rings, jittered(cls));
        }
        add_annotation(cls, mask, rle_json(mask, img.w, img.h), true);
      }
    }
    write_jpeg(img, options.quality(), (fs::path(summary.image_dir) / file_name).string());
  }

  std::string categories_json;
  for (const DemoClass& cls : classes)
    categories_json += std::string(categories_json.empty() ? "" : ",\n") +
                       "  {\"id\":" + std::to_string(cls.id) + ",\"name\":\"" + cls.name +
                       "\",\"supercategory\":\"shape\"}";
  std::ofstream json(summary.annotation_file, std::ios::binary);
  json << "{\"info\":{\"description\":\"mobilenet demo shapes (" << name
       << ")\",\"version\":\"1.0\",\"year\":2024},\n"
       << "\"licenses\":[{\"id\":1,\"name\":\"CC0\",\"url\":\"\"}],\n"
       << "\"images\":[\n" << images_json << "\n],\n"
       << "\"annotations\":[\n" << anns_json << "\n],\n"
       << "\"categories\":[\n" << categories_json << "\n]}\n";
  if (!json) throw std::runtime_error("make_demo_data: cannot write " + summary.annotation_file);
  return summary;
}

/// Writes the train and val splits under `out` and returns their summaries (train, val).
/// Example: `write_demo_data("demo", DemoDataOptions().train(100).val(20).size(64))`.
inline std::vector<DemoSplitSummary> write_demo_data(const std::string& out,
                                                     const DemoDataOptions& options = {}) {
  if (options.train() < 0 || options.val() < 0)
    throw std::invalid_argument("make_demo_data: image counts must be >= 0");
  if (options.size() < 32 || options.size() > 4096)
    throw std::invalid_argument("make_demo_data: size must be in [32, 4096], got " +
                                std::to_string(options.size()));
  if (options.quality() < 1 || options.quality() > 100)
    throw std::invalid_argument("make_demo_data: quality must be in [1, 100]");
  detail::demo::Rng rng(options.seed());
  int64_t image_id = 0, ann_id = 0;
  std::vector<DemoSplitSummary> out_splits;
  out_splits.push_back(write_demo_split(out, "train", options.train(), options, rng, image_id, ann_id));
  out_splits.push_back(write_demo_split(out, "val", options.val(), options, rng, image_id, ann_id));
  return out_splits;
}

}  // namespace mobilenet

// Looks at a COCO-format data set before training on it:
//
//   coco_stats --annotations demo/annotations/instances_train.json --images demo/train
//
// prints class frequencies, labels per image, the image size distribution and, when the image
// folder is given, the mean brightness of every image before and after ImageNet normalization,
// how many images turn "dark" once normalized (most of their values below zero, so they show
// as black when the normalized tensor is viewed as an image), size mismatches between the
// annotations and the files, and the files that cannot be read.
#include <mobilenet/data/coco.hpp>
#include <mobilenet/data/image.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// ImageNet statistics, as torchvision's Normalize uses them.
constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};
// Brightness does not need full resolution: JPEGs decode at the DCT scale that keeps at
// least this many pixels per side, which is up to 8x faster per side on COCO's 640x480.
constexpr int64_t kStatSide = 64;

struct ImageStats {
  bool ok = false;
  float brightness = 0;       // mean of the RGB values in [0, 1]
  float normalized = 0;       // mean of the normalized values
  float negative = 0;         // fraction of normalized values below 0
  bool size_mismatch = false;
  std::string error;
};

ImageStats measure(const std::string& path, const mobilenet::CocoImage& image,
                   std::vector<uint8_t>& bytes, std::vector<uint8_t>& scratch) {
  ImageStats s;
  try {
    mobilenet::read_file(path, bytes);
    const auto info = mobilenet::probe_image(bytes.data(), bytes.size(), path);
    const auto decoded = mobilenet::decode_image_region(
        bytes.data(), bytes.size(), path, double(info.size.height), double(info.size.width),
        {kStatSide, kStatSide}, &scratch);
    s.size_mismatch = decoded.original.width != image.width || decoded.original.height != image.height;
    const torch::Tensor px = decoded.pixels.contiguous();
    const uint8_t* p = px.data_ptr<uint8_t>();
    const int64_t n = px.size(0) * px.size(1);
    double sum = 0, norm = 0;
    int64_t negative = 0;
    for (int64_t i = 0; i < n; ++i) {
      for (int c = 0; c < 3; ++c) {
        const float v = p[3 * i + c] / 255.0f;
        const float z = (v - kMean[c]) / kStd[c];
        sum += v;
        norm += z;
        negative += z < 0;
      }
    }
    s.brightness = float(sum / double(3 * n));
    s.normalized = float(norm / double(3 * n));
    s.negative = float(double(negative) / double(3 * n));
    s.ok = true;
  } catch (const std::exception& e) {
    s.error = e.what();
  }
  return s;
}

float quantile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

void print_quantiles(const char* what, const std::vector<float>& v) {
  std::printf("  %-34s p1 %7.3f  p10 %7.3f  median %7.3f  p90 %7.3f  p99 %7.3f\n", what,
              quantile(v, 0.01), quantile(v, 0.10), quantile(v, 0.5), quantile(v, 0.9),
              quantile(v, 0.99));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Statistics of a COCO-format multi-label data set"};
  std::string annotations, images_dir;
  bool ignore_crowd = false;
  int64_t max_images = 0, threads = std::max(1u, std::thread::hardware_concurrency());
  double dark_fraction = 0.9;
  size_t list = 20;
  app.add_option("--annotations", annotations, "COCO-format annotation file")->required();
  app.add_option("--images", images_dir, "image folder (enables brightness and file checks)");
  app.add_flag("--ignore-crowd", ignore_crowd, "do not count crowd annotations");
  app.add_option("--max-images", max_images, "look at only the first N images (0: all)")
      ->capture_default_str();
  app.add_option("--threads", threads, "decoding threads")->capture_default_str();
  app.add_option("--dark-fraction", dark_fraction,
                 "an image is dark after normalization when at least this fraction of its "
                 "normalized values is below zero")
      ->capture_default_str();
  app.add_option("--list", list, "how many unreadable or dark files to name")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  mobilenet::CocoDataset ds;
  try {
    ds = mobilenet::load_coco(annotations, mobilenet::CocoOptions().ignore_crowd(ignore_crowd));
  } catch (const mobilenet::CocoError& e) {
    std::fprintf(stderr, "coco_stats: %s\n", e.what());
    return 1;
  }
  const size_t n = ds.images.size();
  std::printf("%s\n  %zu images, %lld annotations (%lld crowd%s), %lld classes\n",
              annotations.c_str(), n, (long long)ds.num_annotations, (long long)ds.num_crowd,
              ignore_crowd ? ", ignored" : "", (long long)ds.num_classes());

  // Class frequencies: in how many images each class is positive.
  std::vector<int64_t> per_class(size_t(ds.num_classes()), 0);
  std::map<size_t, int64_t> per_image;
  for (const auto& l : ds.labels) {
    for (int64_t k : l) ++per_class[size_t(k)];
    ++per_image[std::min<size_t>(l.size(), 10)];
  }
  std::printf("\nclass frequencies (images with the class)\n  %5s %6s  %-24s %8s %7s\n", "class",
              "id", "name", "images", "%");
  for (size_t k = 0; k < per_class.size(); ++k)
    std::printf("  %5zu %6lld  %-24s %8lld %6.2f%%\n", k, (long long)ds.categories[k].id,
                ds.categories[k].name.c_str(), (long long)per_class[k],
                n ? 100.0 * double(per_class[k]) / double(n) : 0.0);
  if (!per_class.empty()) {
    const auto [lo, hi] = std::minmax_element(per_class.begin(), per_class.end());
    std::printf("  rarest '%s' (%lld), most frequent '%s' (%lld): imbalance %.1fx\n",
                ds.categories[size_t(lo - per_class.begin())].name.c_str(), (long long)*lo,
                ds.categories[size_t(hi - per_class.begin())].name.c_str(), (long long)*hi,
                *lo ? double(*hi) / double(*lo) : 0.0);
  }

  double labels_total = 0;
  for (const auto& l : ds.labels) labels_total += double(l.size());
  std::printf("\nlabels per image (mean %.2f)\n", n ? labels_total / double(n) : 0.0);
  for (const auto& [count, images] : per_image)
    std::printf("  %s%-3zu %8lld images %6.2f%%\n", count == 10 ? ">=" : "  ", count,
                (long long)images, n ? 100.0 * double(images) / double(n) : 0.0);

  // Sizes as annotated.
  std::vector<float> widths, heights, aspects;
  std::map<int64_t, int64_t> shorter;  // bucket upper bound -> images
  const int64_t kBuckets[] = {64, 128, 256, 384, 512, 640, 1024};
  for (const auto& im : ds.images) {
    widths.push_back(float(im.width));
    heights.push_back(float(im.height));
    aspects.push_back(float(im.width) / float(im.height));
    const int64_t side = std::min(im.width, im.height);
    int64_t bucket = -1;
    for (int64_t b : kBuckets)
      if (side <= b) {
        bucket = b;
        break;
      }
    ++shorter[bucket];
  }
  std::printf("\nimage sizes (annotated)\n");
  print_quantiles("width", widths);
  print_quantiles("height", heights);
  print_quantiles("aspect (width / height)", aspects);
  std::printf("  shorter side:");
  for (const auto& [b, c] : shorter)
    std::printf("  %s%lld: %lld", b < 0 ? ">" : "<=", (long long)(b < 0 ? 1024 : b), (long long)c);
  std::printf("\n");

  if (images_dir.empty()) return 0;

  // Pixels: decode every image on `threads` threads.
  const size_t count = max_images > 0 ? std::min(n, size_t(max_images)) : n;
  std::vector<ImageStats> stats(count);
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < std::max<int64_t>(1, threads); ++t)
    workers.emplace_back([&] {
      std::vector<uint8_t> bytes, scratch;
      for (size_t i; (i = next++) < count;)
        stats[i] = measure((std::filesystem::path(images_dir) / ds.images[i].file_name).string(),
                           ds.images[i], bytes, scratch);
    });
  for (auto& w : workers) w.join();

  std::vector<float> before, after;
  std::vector<size_t> dark, unreadable;
  int64_t mismatched = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto& s = stats[i];
    if (!s.ok) {
      unreadable.push_back(i);
      continue;
    }
    before.push_back(s.brightness);
    after.push_back(s.normalized);
    if (s.negative >= dark_fraction) dark.push_back(i);
    mismatched += s.size_mismatch;
  }
  std::printf("\npixels of %zu images in %s\n", count, images_dir.c_str());
  print_quantiles("mean brightness, [0, 1]", before);
  print_quantiles("mean after ImageNet normalization", after);
  double mb = 0, ma = 0;
  for (float v : before) mb += v;
  for (float v : after) ma += v;
  if (!before.empty())
    std::printf("  data set mean: %.3f before, %.3f after normalization\n", mb / double(before.size()),
                ma / double(after.size()));
  std::printf("  dark after normalization (>= %.0f%% of values below 0): %zu images (%.2f%%)\n",
              100 * dark_fraction, dark.size(),
              before.empty() ? 0.0 : 100.0 * double(dark.size()) / double(before.size()));
  for (size_t k = 0; k < std::min(list, dark.size()); ++k)
    std::printf("    %s  (brightness %.3f)\n", ds.images[dark[k]].file_name.c_str(),
                stats[dark[k]].brightness);
  std::printf("  size differs from the annotation: %lld images\n", (long long)mismatched);
  std::printf("  unreadable: %zu images\n", unreadable.size());
  for (size_t k = 0; k < std::min(list, unreadable.size()); ++k)
    std::printf("    %s\n", stats[unreadable[k]].error.c_str());
  return unreadable.empty() ? 0 : 2;
}

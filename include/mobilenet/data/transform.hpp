#pragma once
/// \file data/transform.hpp
/// The image transform: geometry steps (resize, crops), then Cutout, RandAugment, flip,
/// colour jitter and normalisation, from a file to a float CHW tensor in one pass. The steps
/// themselves are in data/transforms/ (one header per kind), the usual recipes in
/// data/presets.hpp, the random numbers in data/random.hpp.
///
/// Geometry is *planned* on the image size read from the header before any pixel is
/// decoded, so the JPEG decoder can pick the smallest DCT scale at which the region the
/// crop uses still has the output resolution. All geometric steps then collapse into one
/// antialiased bilinear resampling (PIL's filter), so nothing is resampled twice.
///
/// Every random choice comes from a generator seeded by `sample_seed(seed, epoch, index)`:
/// a sample's augmentation does not depend on worker count, batch order or sharding.
///
/// Example:
/// ```
/// auto train = mobilenet::Transform().random_resized_crop(224).horizontal_flip()
///                  .normalize(mobilenet::kImageNetMean, mobilenet::kImageNetStd);
/// torch::Tensor x = train("cat.jpg", mobilenet::sample_seed(0, epoch, index));  // 3x224x224
/// ```

#include <mobilenet/data/detail/image_resample.hpp>
#include <mobilenet/data/geometry.hpp>
#include <mobilenet/data/image.hpp>
#include <mobilenet/data/random.hpp>
#include <mobilenet/data/transforms/colour.hpp>
#include <mobilenet/data/transforms/crop.hpp>
#include <mobilenet/data/transforms/cutout.hpp>
#include <mobilenet/data/transforms/flip.hpp>
#include <mobilenet/data/transforms/normalize.hpp>
#include <mobilenet/data/transforms/randaugment.hpp>
#include <mobilenet/data/transforms/resize.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mobilenet {

/// A composable image transform: geometry steps (resize, crops) apply in the order added;
/// then Cutout, RandAugment (data/transforms/), horizontal flip, colour jitter and
/// normalisation, always in that order.
/// The result is float CHW (a view of HWC memory: channels-last strides).
class Transform {
 public:
  /// Resizes the shorter side to `size`, keeping the aspect ratio (torchvision Resize(int)).
  Transform& resize(int64_t size) {
    TORCH_CHECK(size > 0, "Transform::resize: size must be positive, got ", size);
    add_geometry({Step::kResizeShorter, size, 0, {}});
    return *this;
  }
  /// Resizes the whole image to exactly height x width, not keeping the aspect ratio
  /// ("squish", torchvision Resize((h, w))): nothing is cropped away.
  Transform& resize(int64_t height, int64_t width) {
    TORCH_CHECK(height > 0 && width > 0, "Transform::resize: sizes must be positive, got ",
                height, "x", width);
    add_geometry({Step::kResize, height, width, {}});
    return *this;
  }
  /// Crops the central size x size square (height x width with two arguments).
  Transform& center_crop(int64_t size) { return center_crop(size, size); }
  Transform& center_crop(int64_t height, int64_t width) {
    TORCH_CHECK(height > 0 && width > 0, "Transform::center_crop: sizes must be positive, got ",
                height, "x", width);
    add_geometry({Step::kCenterCrop, height, width, {}});
    return *this;
  }
  /// torchvision's RandomResizedCrop to size x size: area fraction and aspect ratio drawn
  /// from `options`, 10 tries, then the central crop.
  Transform& random_resized_crop(int64_t size, RandomResizedCropOptions options = {}) {
    return random_resized_crop(size, size, options);
  }
  Transform& random_resized_crop(int64_t height, int64_t width,
                                 RandomResizedCropOptions options = {}) {
    TORCH_CHECK(height > 0 && width > 0,
                "Transform::random_resized_crop: sizes must be positive, got ", height, "x",
                width);
    TORCH_CHECK(0 < options.scale_min() && options.scale_min() <= options.scale_max() &&
                    options.scale_max() <= 1.0,
                "Transform::random_resized_crop: need 0 < scale_min <= scale_max <= 1");
    TORCH_CHECK(0 < options.ratio_min() && options.ratio_min() <= options.ratio_max(),
                "Transform::random_resized_crop: need 0 < ratio_min <= ratio_max");
    add_geometry({Step::kRandomResizedCrop, height, width, options});
    return *this;
  }
  /// Flips left-right with probability p. Default 0.5.
  Transform& horizontal_flip(double p = 0.5) {
    TORCH_CHECK(p >= 0 && p <= 1, "Transform::horizontal_flip: p must be in [0, 1], got ", p);
    flip_p_ = p;
    return *this;
  }
  /// torchvision ColorJitter: the enabled components in a random order per sample.
  Transform& color_jitter(ColorJitterOptions options) {
    TORCH_CHECK(options.brightness() >= 0 && options.contrast() >= 0 &&
                    options.saturation() >= 0 && options.hue() >= 0 && options.hue() <= 0.5,
                "Transform::color_jitter: strengths must be >= 0 and hue <= 0.5");
    jitter_ = options;
    return *this;
  }
  /// Cutout on the resized uint8 image (see CutoutOptions); throws naming a bad option.
  Transform& cutout(CutoutOptions options) {
    check_cutout_options(options);
    cutout_ = options;
    return *this;
  }
  /// RandAugment on the resized uint8 image, after Cutout (see RandAugmentOptions); throws
  /// naming a bad option.
  Transform& randaugment(RandAugmentOptions options) {
    check_randaugment_options(options);
    randaugment_ = options;
    return *this;
  }
  /// (x / 255 - mean) / std per channel. Without normalize (or after no_normalize) the
  /// output is x / 255 in [0, 1].
  Transform& normalize(std::array<float, 3> mean = kImageNetMean,
                       std::array<float, 3> std = kImageNetStd) {
    for (float s : std) TORCH_CHECK(s > 0, "Transform::normalize: std must be positive");
    mean_ = mean;
    std_ = std;
    return *this;
  }
  /// Refuse images with more than `n` pixels (from the header, before decoding). Default
  /// kDefaultMaxImagePixels; see DecodeOptions.
  Transform& max_image_pixels(int64_t n) {
    TORCH_CHECK(n > 0, "Transform::max_image_pixels: must be positive, got ", n);
    decode_.max_pixels(n);
    return *this;
  }
  /// Output x / 255 in [0, 1], no mean/std.
  Transform& no_normalize() {
    mean_ = {0.f, 0.f, 0.f};
    std_ = {1.f, 1.f, 1.f};
    return *this;
  }

  /// Output height x width when every image gives the same size (the transform ends with
  /// a crop or an exact resize); batching needs it.
  std::optional<ImageSize> fixed_output_size() const {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) {
      if (it->kind != Step::kResizeShorter) return ImageSize{it->h, it->w};
      return std::nullopt;
    }
    return std::nullopt;
  }

  /// Plans the geometry for an image of `size`, drawing from `rng` (crop, then flip).
  GeometryPlan plan(ImageSize size, SampleRng& rng) const {
    GeometryPlan p;
    p.box = {0, 0, double(size.width), double(size.height)};
    p.cx1 = size.width;
    p.cy1 = size.height;
    double vh = double(size.height), vw = double(size.width);  // current (virtual) size
    bool resampled = false;
    auto crop = [&](int64_t top, int64_t left, int64_t h, int64_t w) {
      const double sx = (p.box.x1 - p.box.x0) / vw, sy = (p.box.y1 - p.box.y0) / vh;
      ImageBox b{p.box.x0 + double(left) * sx, p.box.y0 + double(top) * sy,
                            p.box.x0 + double(left + w) * sx, p.box.y0 + double(top + h) * sy};
      p.box = b;
      // Before any resize, a crop restricts what the filter may read (PIL crops, then
      // resizes); after a resize it only selects pixels of the resized image.
      if (!resampled) {
        p.cx0 = std::max<int64_t>(p.cx0, int64_t(std::floor(b.x0)));
        p.cy0 = std::max<int64_t>(p.cy0, int64_t(std::floor(b.y0)));
        p.cx1 = std::min<int64_t>(p.cx1, int64_t(std::ceil(b.x1)));
        p.cy1 = std::min<int64_t>(p.cy1, int64_t(std::ceil(b.y1)));
      }
      vh = double(h);
      vw = double(w);
    };
    for (const auto& s : steps_) {
      const int64_t ih = int64_t(vh), iw = int64_t(vw);
      switch (s.kind) {
        case Step::kResize:
          vh = double(s.h);
          vw = double(s.w);
          resampled = true;
          break;
        case Step::kResizeShorter: {
          const ImageSize r = detail::resize_shorter_side(ImageSize{ih, iw}, s.h);
          vh = double(r.height);
          vw = double(r.width);
          resampled = true;
          break;
        }
        case Step::kCenterCrop: {
          // A crop larger than the image reads outside it; the resampler replicates edge
          // pixels there (torchvision pads zeros).
          crop(detail::center_crop_offset(ih, s.h), detail::center_crop_offset(iw, s.w), s.h, s.w);
          break;
        }
        case Step::kRandomResizedCrop: {
          int64_t i = 0, j = 0, h = 0, w = 0;
          detail::random_resized_crop_params(ih, iw, s.rrc, rng, i, j, h, w);
          crop(i, j, h, w);
          vh = double(s.h);
          vw = double(s.w);
          resampled = true;
          break;
        }
      }
    }
    p.out_h = int64_t(vh);
    p.out_w = int64_t(vw);
    // Always draw, so later draws do not depend on whether flipping is enabled.
    const double u = rng.uniform(0, 1);
    p.flip = u < flip_p_;
    return p;
  }

  /// Reads, decodes and transforms a file into float HWC at `out` (out_h * out_w * 3),
  /// whose size must be `fixed_output_size()`. Returns the plan used. Throws ImageError.
  GeometryPlan apply_into(const std::string& path, uint64_t seed, float* out) const {
    thread_local std::vector<uint8_t> bytes;
    read_file(path, bytes);
    GeometryPlan p = apply_bytes_into(bytes.data(), bytes.size(), path, seed, out);
    if (bytes.capacity() > (size_t(64) << 20)) std::vector<uint8_t>().swap(bytes);
    return p;
  }

  /// Same as apply_into, from encoded bytes.
  GeometryPlan apply_bytes_into(const uint8_t* data, size_t size,
                                        const std::string& path, uint64_t seed,
                                        float* out) const {
    SampleRng rng(seed);
    GeometryPlan p;
    thread_local std::vector<uint8_t> scratch;
    DecodedImage img = decode_planned(data, size, path, rng, p, &scratch);
    finish(img, p, rng, out);
    // One huge image should not pin its buffer in every worker for the rest of the run.
    constexpr size_t kKeepScratch = size_t(64) << 20;
    if (scratch.capacity() > kKeepScratch) std::vector<uint8_t>().swap(scratch);
    return p;
  }

  /// Decodes what apply_bytes_into reads for `seed` (a JPEG at its DCT scale, only the rows
  /// and columns the filter taps) and stops there: the decode floor of the pipeline, which
  /// benchmarks/images measures. The pixels live in a per-thread buffer until the next call.
  DecodedImage decode_only(const uint8_t* data, size_t size, const std::string& path,
                           uint64_t seed) const {
    SampleRng rng(seed);
    GeometryPlan p;
    thread_local std::vector<uint8_t> scratch;
    return decode_planned(data, size, path, rng, p, &scratch);
  }

  /// Transforms a file: float CHW tensor (channels-last strides).
  torch::Tensor operator()(const std::string& path, uint64_t seed) const {
    std::vector<uint8_t> bytes = read_file(path);
    SampleRng rng(seed);
    GeometryPlan p;
    DecodedImage img = decode_planned(bytes.data(), bytes.size(), path, rng, p, nullptr);
    torch::Tensor out = torch::empty({p.out_h, p.out_w, 3}, torch::kFloat);
    finish(img, p, rng, out.data_ptr<float>());
    return out.permute({2, 0, 1});
  }

  /// Transforms an already decoded uint8 HWC RGB image (no DCT scaling): float CHW.
  torch::Tensor operator()(const torch::Tensor& image, uint64_t seed) const {
    TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == torch::kUInt8,
                "Transform: expected a uint8 HxWx3 image, got ", image.sizes(), " ",
                image.scalar_type());
    SampleRng rng(seed);
    GeometryPlan p = plan(ImageSize{image.size(0), image.size(1)}, rng);
    torch::Tensor out = torch::empty({p.out_h, p.out_w, 3}, torch::kFloat);
    finish(DecodedImage{image.contiguous(), ImageSize{image.size(0), image.size(1)}}, p, rng,
           out.data_ptr<float>());
    return out.permute({2, 0, 1});
  }

  /// Resamples the plan's box of a decoded image to uint8 HWC (no flip, jitter, or
  /// normalisation): the geometric part alone, for tests and diagnostics.
  static torch::Tensor resample(const DecodedImage& img, const GeometryPlan& p) {
    torch::Tensor out = torch::empty({p.out_h, p.out_w, 3}, torch::kUInt8);
    GeometryPlan unflipped = p;
    unflipped.flip = false;
    resample_into(img, unflipped, out.data_ptr<uint8_t>());
    return out;
  }

 private:
  // One geometry step as added; kResizeShorter keeps the shorter side in h.
  struct Step {
    enum Kind { kResize, kResizeShorter, kCenterCrop, kRandomResizedCrop } kind;
    int64_t h = 0, w = 0;
    RandomResizedCropOptions rrc;
  };

  // Plans the geometry (drawing from `rng`, into `p`) and decodes what it reads.
  DecodedImage decode_planned(const uint8_t* data, size_t size, const std::string& path,
                              SampleRng& rng, GeometryPlan& p,
                              std::vector<uint8_t>* scratch) const {
    ImageInfo info = probe_image(data, size, path, decode_);
    p = plan(info.size, rng);
    return detail::decode_for_resample(data, size, path, info, spec(p), decode_, scratch);
  }

  static detail::ResampleSpec spec(const GeometryPlan& p) {
    return {p.box, {p.cx0, p.cy0, p.cx1, p.cy1}, p.out_h, p.out_w, p.flip};
  }

  // The plan is in full-resolution pixels; the image may be DCT-scaled and a window.
  static void resample_into(const DecodedImage& img, const GeometryPlan& p,
                            uint8_t* out) {
    torch::Tensor px = img.pixels.contiguous();
    const ImageSize scaled = img.scaled_size();
    const detail::ResampleSpec s =
        detail::rescale(spec(p), double(scaled.width) / double(img.original.width),
                        double(scaled.height) / double(img.original.height));
    detail::resample_rgb({px.data_ptr<uint8_t>(), img.left, img.top, px.size(1), px.size(0)},
                         scaled.width, scaled.height, s, out);
  }

  void add_geometry(Step step) { steps_.push_back(step); }

  // Resample, then flip + jitter + normalise into float HWC. Without Cutout or RandAugment
  // (which must see the unflipped image) the resampler flips, for free.
  void finish(const DecodedImage& img, const GeometryPlan& p, SampleRng& rng,
              float* out) const {
    thread_local std::vector<uint8_t> resampled;
    resampled.resize(size_t(p.out_h * p.out_w * 3));
    const bool augment = cutout_ || randaugment_;
    GeometryPlan q = p;
    q.flip = p.flip && !augment;
    resample_into(img, q, resampled.data());
    if (augment) {
      // One draw seeds the augmentations' own stream: their draw count varies per sample.
      SampleRng aug_rng(rng.next());
      if (cutout_) detail::cutout_u8(resampled.data(), p.out_h, p.out_w, *cutout_, aug_rng);
      if (randaugment_)
        detail::randaugment_u8(resampled.data(), p.out_h, p.out_w, *randaugment_, aug_rng);
    }
    const int64_t h = p.out_h, w = p.out_w;
    // After the augmentations, as torchvision orders them.
    if (p.flip && !q.flip) detail::flip_horizontal_u8(resampled.data(), h, w);
    const uint8_t* src = resampled.data();
    if (!enabled(jitter_)) {
      detail::normalize_u8(src, h * w, mean_, std_, out);
      return;
    }
    for (int64_t i = 0; i < h * w * 3; ++i) out[i] = float(src[i]) / 255.f;
    detail::color_jitter(out, h * w, jitter_, rng);
    for (int64_t i = 0; i < h * w; ++i)
      for (int c = 0; c < 3; ++c) out[i * 3 + c] = (out[i * 3 + c] - mean_[c]) / std_[c];
  }

  std::vector<Step> steps_;
  DecodeOptions decode_;
  double flip_p_ = 0;
  ColorJitterOptions jitter_;
  std::optional<CutoutOptions> cutout_;
  std::optional<RandAugmentOptions> randaugment_;
  std::array<float, 3> mean_ = {0.f, 0.f, 0.f};
  std::array<float, 3> std_ = {1.f, 1.f, 1.f};
};

}  // namespace mobilenet

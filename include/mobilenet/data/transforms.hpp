#pragma once
/// \file transforms.hpp
/// Per-image training and evaluation transforms: resize, crops, flip, colour jitter,
/// normalisation, from a file to a float CHW tensor in one pass.
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

#include <mobilenet/data/augment.hpp>
#include <mobilenet/data/detail/image_resample.hpp>
#include <mobilenet/data/image.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mobilenet {

/// ImageNet channel means and standard deviations (RGB, on [0, 1] pixel values).
constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

/// The seed of one sample's generator in one epoch: a hash of (seed, epoch, index).
inline uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  auto mix = [](uint64_t z) {  // splitmix64's finaliser
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ uint64_t(epoch)) ^ uint64_t(index));
}

/// A small, portable generator (splitmix64): the same seed gives the same augmentation on
/// every platform and standard library, unlike std::uniform_*_distribution.
class SampleRng {
 public:
  explicit SampleRng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * (double(next() >> 11) * (1.0 / 9007199254740992.0));
  }
  /// Uniform integer in [lo, hi) (hi > lo).
  int64_t randint(int64_t lo, int64_t hi) {
    return lo + int64_t(next() % uint64_t(hi - lo));
  }

 private:
  uint64_t state_;
};

/// RandomResizedCrop's sampling ranges (torchvision's defaults).
struct RandomResizedCropOptions {
  /// Range of the crop's area as a fraction of the image. Default (0.08, 1).
  TORCH_ARG(double, scale_min) = 0.08;
  TORCH_ARG(double, scale_max) = 1.0;
  /// Range of the crop's aspect ratio w / h. Default (3/4, 4/3).
  TORCH_ARG(double, ratio_min) = 3.0 / 4.0;
  TORCH_ARG(double, ratio_max) = 4.0 / 3.0;
};

/// torchvision's ColorJitter strengths; 0 disables a component.
/// Example: `ColorJitterOptions().brightness(0.4).contrast(0.4).saturation(0.4)`.
struct ColorJitterOptions {
  /// Brightness factor drawn from [max(0, 1 - b), 1 + b]. Default 0.
  TORCH_ARG(double, brightness) = 0;
  /// Contrast factor drawn from [max(0, 1 - c), 1 + c]. Default 0.
  TORCH_ARG(double, contrast) = 0;
  /// Saturation factor drawn from [max(0, 1 - s), 1 + s]. Default 0.
  TORCH_ARG(double, saturation) = 0;
  /// Hue shift drawn from [-h, h], h <= 0.5. Default 0.
  TORCH_ARG(double, hue) = 0;
};

namespace detail {

// The geometry of one sample, decided before decoding: which source box (full-resolution
// pixels) becomes the output, and which integer rectangle the filter may read.
struct GeometryPlan {
  ResampleBox box;
  int64_t cx0 = 0, cy0 = 0, cx1 = 0, cy1 = 0;
  int64_t out_h = 0, out_w = 0;
  bool flip = false;
};

struct GeometryStep {
  enum Kind { kResize, kResizeShorter, kCenterCrop, kRandomResizedCrop } kind;
  int64_t h = 0, w = 0;  // kResizeShorter: h is the shorter side
  RandomResizedCropOptions rrc;
};

// torchvision.transforms.RandomResizedCrop.get_params, with our generator.
inline void random_resized_crop_params(int64_t height, int64_t width,
                                       const RandomResizedCropOptions& o, SampleRng& rng,
                                       int64_t& i, int64_t& j, int64_t& h, int64_t& w) {
  const double area = double(height) * double(width);
  const double log_r0 = std::log(o.ratio_min()), log_r1 = std::log(o.ratio_max());
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * rng.uniform(o.scale_min(), o.scale_max());
    const double aspect = std::exp(rng.uniform(log_r0, log_r1));
    // std::nearbyint rounds half to even, like Python's round().
    w = int64_t(std::nearbyint(std::sqrt(target_area * aspect)));
    h = int64_t(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      i = rng.randint(0, height - h + 1);
      j = rng.randint(0, width - w + 1);
      return;
    }
  }
  // Fallback: the largest central crop within the ratio range.
  const double in_ratio = double(width) / double(height);
  if (in_ratio < o.ratio_min()) {
    w = width;
    h = int64_t(std::nearbyint(double(w) / o.ratio_min()));
  } else if (in_ratio > o.ratio_max()) {
    h = height;
    w = int64_t(std::nearbyint(double(h) * o.ratio_max()));
  } else {
    w = width;
    h = height;
  }
  i = (height - h) / 2;
  j = (width - w) / 2;
}

// torchvision's rgb_to_grayscale weights.
inline float luma(const float* p) { return 0.2989f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

inline float clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

// Hue shift through HSV, following torchvision's tensor implementation.
inline void shift_hue(float* p, float shift) {
  const float r = p[0], g = p[1], b = p[2];
  const float maxc = std::max({r, g, b}), minc = std::min({r, g, b});
  const float v = maxc, cr = maxc - minc;
  if (cr == 0.f) return;  // grey: hue is undefined and the shift changes nothing
  const float s = cr / maxc;
  const float rc = (maxc - r) / cr, gc = (maxc - g) / cr, bc = (maxc - b) / cr;
  float h;
  if (maxc == r) h = bc - gc;
  else if (maxc == g) h = 2.f + rc - bc;
  else h = 4.f + gc - rc;
  h = std::fmod(h / 6.f + 1.f, 1.f);
  h = std::fmod(h + shift + 1.f, 1.f);
  const float h6 = h * 6.f;
  const int sector = int(std::floor(h6)) % 6;
  const float f = h6 - std::floor(h6);
  const float pp = clamp01(v * (1.f - s)), q = clamp01(v * (1.f - s * f)),
              t = clamp01(v * (1.f - s * (1.f - f)));
  switch (sector) {
    case 0: p[0] = v; p[1] = t; p[2] = pp; break;
    case 1: p[0] = q; p[1] = v; p[2] = pp; break;
    case 2: p[0] = pp; p[1] = v; p[2] = t; break;
    case 3: p[0] = pp; p[1] = q; p[2] = v; break;
    case 4: p[0] = t; p[1] = pp; p[2] = v; break;
    default: p[0] = v; p[1] = pp; p[2] = q; break;
  }
}

// torchvision's adjust_* on float RGB in [0, 1], here on n HWC pixels in place.
inline void adjust_brightness(float* img, int64_t n, float f) {
  for (int64_t i = 0; i < n * 3; ++i) img[i] = clamp01(img[i] * f);
}

inline void adjust_contrast(float* img, int64_t n, float f) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) total += luma(img + i * 3);
  const float mean = float(total / double(n));
  for (int64_t i = 0; i < n * 3; ++i) img[i] = clamp01(f * img[i] + (1.f - f) * mean);
}

inline void adjust_saturation(float* img, int64_t n, float f) {
  for (int64_t i = 0; i < n; ++i) {
    float* q = img + i * 3;
    const float g = luma(q);
    for (int c = 0; c < 3; ++c) q[c] = clamp01(f * q[c] + (1.f - f) * g);
  }
}

inline void adjust_hue(float* img, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) shift_hue(img + i * 3, shift);
}

#ifdef MOBILENET_RESAMPLE_AVX2
// Eight pixels (24 values) per step through one gather each: value k has channel k % 3, so
// the table offsets cycle through three phases.
__attribute__((target("avx2"))) inline int64_t normalize_u8_avx2(const uint8_t* src, int64_t n,
                                                                  const float* table,
                                                                  float* out) {
  __m256i offset[3];
  for (int v = 0; v < 3; ++v) {
    alignas(32) int32_t o[8];
    for (int k = 0; k < 8; ++k) o[k] = ((v * 8 + k) % 3) * 256;
    offset[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(o));
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int v = 0; v < 3; ++v) {
      const __m128i px = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + i * 3 + v * 8));
      const __m256i index = _mm256_add_epi32(_mm256_cvtepu8_epi32(px), offset[v]);
      _mm256_storeu_ps(out + i * 3 + v * 8, _mm256_i32gather_ps(table, index, 4));
    }
  }
  return i;
}
#endif

// (v / 255 - mean) / std per channel for n HWC pixels, through a table of the 3 x 256 exact
// values: bit-identical to torchvision's ToTensor + Normalize (each step rounded in float),
// which keeps C++ and PyTorch training on the same inputs (the learning-parity test relies on
// it), and faster than computing them (a multiply-add, not exact, saved ~1.5% of a decode).
inline void normalize_u8(const uint8_t* src, int64_t n, const std::array<float, 3>& mean,
                         const std::array<float, 3>& std, float* out) {
  alignas(32) float table[3 * 256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) table[c * 256 + v] = (float(v) / 255.f - mean[c]) / std[c];
  int64_t done = 0;
#ifdef MOBILENET_RESAMPLE_AVX2
  if (cpu_has_avx2()) done = normalize_u8_avx2(src, n, table, out);
#endif
  for (int64_t i = done; i < n; ++i)
    for (int c = 0; c < 3; ++c) out[i * 3 + c] = table[c * 256 + src[i * 3 + c]];
}

}  // namespace detail

/// A composable image transform: geometry steps (resize, crops) apply in the order added;
/// then Cutout, RandAugment (augment.hpp), horizontal flip, colour jitter and
/// normalisation, always in that order.
/// The result is float CHW (a view of HWC memory: channels-last strides).
class Transform {
 public:
  /// Resizes the shorter side to `size`, keeping the aspect ratio (torchvision Resize(int)).
  Transform& resize(int64_t size) {
    TORCH_CHECK(size > 0, "Transform::resize: size must be positive, got ", size);
    add_geometry({detail::GeometryStep::kResizeShorter, size, 0, {}});
    return *this;
  }
  /// Resizes the whole image to exactly height x width, not keeping the aspect ratio
  /// ("squish", torchvision Resize((h, w))): nothing is cropped away.
  Transform& resize(int64_t height, int64_t width) {
    TORCH_CHECK(height > 0 && width > 0, "Transform::resize: sizes must be positive, got ",
                height, "x", width);
    add_geometry({detail::GeometryStep::kResize, height, width, {}});
    return *this;
  }
  /// Crops the central size x size square (height x width with two arguments).
  Transform& center_crop(int64_t size) { return center_crop(size, size); }
  Transform& center_crop(int64_t height, int64_t width) {
    TORCH_CHECK(height > 0 && width > 0, "Transform::center_crop: sizes must be positive, got ",
                height, "x", width);
    add_geometry({detail::GeometryStep::kCenterCrop, height, width, {}});
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
    add_geometry({detail::GeometryStep::kRandomResizedCrop, height, width, options});
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
      if (it->kind != detail::GeometryStep::kResizeShorter) return ImageSize{it->h, it->w};
      return std::nullopt;
    }
    return std::nullopt;
  }

  /// Plans the geometry for an image of `size`, drawing from `rng` (crop, then flip).
  detail::GeometryPlan plan(ImageSize size, SampleRng& rng) const {
    detail::GeometryPlan p;
    p.box = {0, 0, double(size.width), double(size.height)};
    p.cx1 = size.width;
    p.cy1 = size.height;
    double vh = double(size.height), vw = double(size.width);  // current (virtual) size
    bool resampled = false;
    auto crop = [&](int64_t top, int64_t left, int64_t h, int64_t w) {
      const double sx = (p.box.x1 - p.box.x0) / vw, sy = (p.box.y1 - p.box.y0) / vh;
      detail::ResampleBox b{p.box.x0 + double(left) * sx, p.box.y0 + double(top) * sy,
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
        case detail::GeometryStep::kResize:
          vh = double(s.h);
          vw = double(s.w);
          resampled = true;
          break;
        case detail::GeometryStep::kResizeShorter:
          // torchvision: the long side is int(size * long / short).
          if (iw <= ih) {
            vw = double(s.h);
            vh = double(int64_t(double(s.h) * double(ih) / double(iw)));
          } else {
            vh = double(s.h);
            vw = double(int64_t(double(s.h) * double(iw) / double(ih)));
          }
          resampled = true;
          break;
        case detail::GeometryStep::kCenterCrop: {
          // torchvision: int(round((h - crop_h) / 2)). A crop larger than the image reads
          // outside it; the resampler replicates edge pixels there (torchvision pads zeros).
          int64_t top = int64_t(std::nearbyint(double(ih - s.h) / 2.0));
          int64_t left = int64_t(std::nearbyint(double(iw - s.w) / 2.0));
          crop(top, left, s.h, s.w);
          break;
        }
        case detail::GeometryStep::kRandomResizedCrop: {
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
  detail::GeometryPlan apply_into(const std::string& path, uint64_t seed, float* out) const {
    thread_local std::vector<uint8_t> bytes;
    read_file(path, bytes);
    detail::GeometryPlan p = apply_bytes_into(bytes.data(), bytes.size(), path, seed, out);
    if (bytes.capacity() > (size_t(64) << 20)) std::vector<uint8_t>().swap(bytes);
    return p;
  }

  /// Same as apply_into, from encoded bytes.
  detail::GeometryPlan apply_bytes_into(const uint8_t* data, size_t size,
                                        const std::string& path, uint64_t seed,
                                        float* out) const {
    ImageInfo info = probe_image(data, size, path, decode_);
    SampleRng rng(seed);
    detail::GeometryPlan p = plan(info.size, rng);
    thread_local std::vector<uint8_t> scratch;
    DecodedImage img =
        detail::decode_for_resample(data, size, path, info, spec(p), decode_, &scratch);
    finish(img, p, rng, out);
    // One huge image should not pin its buffer in every worker for the rest of the run.
    constexpr size_t kKeepScratch = size_t(64) << 20;
    if (scratch.capacity() > kKeepScratch) std::vector<uint8_t>().swap(scratch);
    return p;
  }

  /// Transforms a file: float CHW tensor (channels-last strides).
  torch::Tensor operator()(const std::string& path, uint64_t seed) const {
    std::vector<uint8_t> bytes = read_file(path);
    ImageInfo info = probe_image(bytes.data(), bytes.size(), path, decode_);
    SampleRng rng(seed);
    detail::GeometryPlan p = plan(info.size, rng);
    DecodedImage img =
        detail::decode_for_resample(bytes.data(), bytes.size(), path, info, spec(p), decode_);
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
    detail::GeometryPlan p = plan(ImageSize{image.size(0), image.size(1)}, rng);
    torch::Tensor out = torch::empty({p.out_h, p.out_w, 3}, torch::kFloat);
    finish(DecodedImage{image.contiguous(), ImageSize{image.size(0), image.size(1)}}, p, rng,
           out.data_ptr<float>());
    return out.permute({2, 0, 1});
  }

  /// Resamples the plan's box of a decoded image to uint8 HWC (no flip, jitter, or
  /// normalisation): the geometric part alone, for tests and diagnostics.
  static torch::Tensor resample(const DecodedImage& img, const detail::GeometryPlan& p) {
    torch::Tensor out = torch::empty({p.out_h, p.out_w, 3}, torch::kUInt8);
    detail::GeometryPlan unflipped = p;
    unflipped.flip = false;
    resample_into(img, unflipped, out.data_ptr<uint8_t>());
    return out;
  }

 private:
  static detail::ResampleSpec spec(const detail::GeometryPlan& p) {
    return {p.box, {p.cx0, p.cy0, p.cx1, p.cy1}, p.out_h, p.out_w, p.flip};
  }

  // The plan is in full-resolution pixels; the image may be DCT-scaled and a window.
  static void resample_into(const DecodedImage& img, const detail::GeometryPlan& p,
                            uint8_t* out) {
    torch::Tensor px = img.pixels.contiguous();
    const ImageSize scaled = img.scaled_size();
    const detail::ResampleSpec s =
        detail::rescale(spec(p), double(scaled.width) / double(img.original.width),
                        double(scaled.height) / double(img.original.height));
    detail::resample_rgb({px.data_ptr<uint8_t>(), img.left, img.top, px.size(1), px.size(0)},
                         scaled.width, scaled.height, s, out);
  }

  void add_geometry(detail::GeometryStep step) { steps_.push_back(step); }

  // Resample, then flip + jitter + normalise into float HWC. Without Cutout or RandAugment
  // (which must see the unflipped image) the resampler flips, for free.
  void finish(const DecodedImage& img, const detail::GeometryPlan& p, SampleRng& rng,
              float* out) const {
    thread_local std::vector<uint8_t> resampled;
    resampled.resize(size_t(p.out_h * p.out_w * 3));
    const bool augment = cutout_ || randaugment_;
    detail::GeometryPlan q = p;
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
    if (p.flip && !q.flip) {  // after the augmentations, as torchvision orders them
      for (int64_t y = 0; y < h; ++y) {
        uint8_t* row = resampled.data() + y * w * 3;
        for (int64_t x = 0; x < w / 2; ++x)
          std::swap_ranges(row + x * 3, row + x * 3 + 3, row + (w - 1 - x) * 3);
      }
    }
    const uint8_t* src = resampled.data();
    const bool jitter = jitter_.brightness() > 0 || jitter_.contrast() > 0 ||
                        jitter_.saturation() > 0 || jitter_.hue() > 0;
    if (!jitter) {
      detail::normalize_u8(src, h * w, mean_, std_, out);
      return;
    }
    for (int64_t i = 0; i < h * w * 3; ++i) out[i] = float(src[i]) / 255.f;
    apply_jitter(out, h * w, rng);
    for (int64_t i = 0; i < h * w; ++i)
      for (int c = 0; c < 3; ++c) out[i * 3 + c] = (out[i * 3 + c] - mean_[c]) / std_[c];
  }

  void apply_jitter(float* img, int64_t n, SampleRng& rng) const {
    // Draw the order and all factors first (a fixed number of draws per sample).
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.randint(0, i + 1)]);
    auto factor = [&](double s) { return float(rng.uniform(std::max(0.0, 1.0 - s), 1.0 + s)); };
    const float fb = factor(jitter_.brightness()), fc = factor(jitter_.contrast()),
                fs = factor(jitter_.saturation());
    const float fh = float(rng.uniform(-jitter_.hue(), jitter_.hue()));
    for (int op : order) {
      if (op == 0 && jitter_.brightness() > 0) detail::adjust_brightness(img, n, fb);
      if (op == 1 && jitter_.contrast() > 0) detail::adjust_contrast(img, n, fc);
      if (op == 2 && jitter_.saturation() > 0) detail::adjust_saturation(img, n, fs);
      if (op == 3 && jitter_.hue() > 0) detail::adjust_hue(img, n, fh);
    }
  }

  std::vector<detail::GeometryStep> steps_;
  DecodeOptions decode_;
  double flip_p_ = 0;
  ColorJitterOptions jitter_;
  std::optional<CutoutOptions> cutout_;
  std::optional<RandAugmentOptions> randaugment_;
  std::array<float, 3> mean_ = {0.f, 0.f, 0.f};
  std::array<float, 3> std_ = {1.f, 1.f, 1.f};
};

/// The usual training transform: RandomResizedCrop(image_size), flip with p = 0.5, and
/// ImageNet normalisation when `normalize` (else [0, 1] values).
inline Transform train_transform(int64_t image_size, bool normalize = true) {
  Transform t;
  t.random_resized_crop(image_size).horizontal_flip(0.5);
  if (normalize) t.normalize(kImageNetMean, kImageNetStd);
  return t;
}

/// The usual evaluation transform: shorter side to image_size * 256 / 224 (256 for 224),
/// center crop image_size, ImageNet normalisation when `normalize`.
inline Transform eval_transform(int64_t image_size, bool normalize = true) {
  Transform t;
  t.resize(int64_t(double(image_size) * 256.0 / 224.0)).center_crop(image_size);
  if (normalize) t.normalize(kImageNetMean, kImageNetStd);
  return t;
}

/// The multi-label training transform: the whole image resized to image_size x image_size
/// (no crop, so no labelled object is cut away), flip with p = 0.5, ImageNet normalisation
/// when `normalize`. Add `.cutout(...)` / `.randaugment(...)` for the ASL recipe.
inline Transform multilabel_train_transform(int64_t image_size, bool normalize = true) {
  Transform t;
  t.resize(image_size, image_size).horizontal_flip(0.5);
  if (normalize) t.normalize(kImageNetMean, kImageNetStd);
  return t;
}

/// The multi-label evaluation transform: the whole image resized to image_size x
/// image_size, ImageNet normalisation when `normalize`.
inline Transform multilabel_eval_transform(int64_t image_size, bool normalize = true) {
  Transform t;
  t.resize(image_size, image_size);
  if (normalize) t.normalize(kImageNetMean, kImageNetStd);
  return t;
}

/// The geometry of an evaluation transform, recorded by name in checkpoints so that
/// prediction rebuilds what the model was trained for.
enum class EvalCrop {
  squish,  ///< "squish": the whole image resized to size x size (multilabel_eval_transform)
  center,  ///< "center": shorter side to size * 256 / 224, central crop (eval_transform)
};

/// "squish" or "center".
inline const char* to_string(EvalCrop crop) {
  return crop == EvalCrop::squish ? "squish" : "center";
}

/// Inverse of to_string(EvalCrop); throws c10::Error naming the value otherwise.
inline EvalCrop parse_eval_crop(const std::string& name) {
  if (name == "squish") return EvalCrop::squish;
  TORCH_CHECK(name == "center", "eval crop must be 'squish' or 'center', got '", name, "'");
  return EvalCrop::center;
}

/// The evaluation transform for `crop`: multilabel_eval_transform or eval_transform.
inline Transform eval_transform(int64_t image_size, EvalCrop crop, bool normalize = true) {
  return crop == EvalCrop::squish ? multilabel_eval_transform(image_size, normalize)
                                  : eval_transform(image_size, normalize);
}

/// The geometry of a training transform.
enum class TrainCrop {
  squish,          ///< "squish": the whole image resized to size x size
  random_resized,  ///< "rrc": torchvision's RandomResizedCrop
};

/// "squish" or "rrc".
inline const char* to_string(TrainCrop crop) {
  return crop == TrainCrop::squish ? "squish" : "rrc";
}

/// Inverse of to_string(TrainCrop); throws c10::Error naming the value otherwise.
inline TrainCrop parse_train_crop(const std::string& name) {
  if (name == "squish") return TrainCrop::squish;
  TORCH_CHECK(name == "rrc", "train crop must be 'squish' or 'rrc', got '", name, "'");
  return TrainCrop::random_resized;
}

/// The training transform for `crop` (`rrc` only for random_resized), flip with p = 0.5,
/// ImageNet normalisation when `normalize`.
/// Example: `train_transform(224, parse_train_crop(flag)).randaugment(RandAugmentOptions(2, 9))`.
inline Transform train_transform(int64_t image_size, TrainCrop crop, bool normalize = true,
                                 RandomResizedCropOptions rrc = {}) {
  if (crop == TrainCrop::squish) return multilabel_train_transform(image_size, normalize);
  Transform t;
  t.random_resized_crop(image_size, rrc).horizontal_flip(0.5);
  if (normalize) t.normalize(kImageNetMean, kImageNetStd);
  return t;
}

}  // namespace mobilenet

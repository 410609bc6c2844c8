#pragma once
/// \file image.hpp
/// Image decoding: JPEG through libjpeg-turbo (DCT-scaled and region decoding), PNG through
/// libpng.
///
/// The format is sniffed from the file's magic bytes, never from its extension, so a PNG
/// named `.jpg` decodes as PNG (PIL does the same). Anything that is not JPEG or PNG, every
/// empty, truncated or corrupt file (a JPEG whose entropy-coded data is cut short or
/// corrupt included), every progressive JPEG with more than 500 scans, every file that is
/// not a regular file, and every image with more pixels than `DecodeOptions::max_pixels`
/// raises `mobilenet::ImageError` naming the path. One file's failure never affects the
/// next decode.

#include <mobilenet/data/detail/image_resample.hpp>
#include <mobilenet/data/detail/jpeg_decoder.hpp>
#include <mobilenet/data/escape.hpp>

#include <torch/torch.h>

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace mobilenet {

/// An image file could not be read or decoded. `path()` names the file, `what()` says why,
/// with the name escaped by escape_path (control characters never reach a terminal).
/// Example: `try { decode_image(p); } catch (const ImageError& e) { skip(e.path()); }`.
class ImageError : public std::runtime_error {
 public:
  ImageError(std::string path, const std::string& reason)
      : std::runtime_error(escape_path(path) + ": " + reason), path_(std::move(path)) {}
  /// The file that failed, unescaped.
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Height and width in pixels.
struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
};

/// Encoded format, from the magic bytes.
enum class ImageFormat { kJpeg, kPng };

/// What the header says, read without decoding pixels.
struct ImageInfo {
  ImageFormat format = ImageFormat::kJpeg;
  ImageSize size;
};

/// A decoded image: uint8 HWC RGB pixels, and the full-resolution size it was decoded from
/// (different from the pixel size when the JPEG was decoded at a DCT scale below 1).
///
/// A decode for a crop may produce only a window of the (scaled) image: then `scaled` is
/// the size of the whole image at the decode scale and (left, top) is where pixels(0, 0)
/// lies in it. By default (scaled {0, 0}) the pixels are the whole image.
struct DecodedImage {
  torch::Tensor pixels;
  ImageSize original;
  ImageSize scaled = {};
  int64_t left = 0, top = 0;

  /// The whole image's size at the decode scale.
  ImageSize scaled_size() const {
    if (scaled.height > 0 && scaled.width > 0) return scaled;
    return ImageSize{pixels.size(0), pixels.size(1)};
  }
};

/// Images with more pixels than this are refused by default: 2^24 = 16.8 MP (4096 x 4096).
/// Decoding holds at most 11 bytes per pixel (3 for the RGB output, up to 8 more for a
/// progressive 4-channel JPEG's coefficients; 4 in all for PNG, whose alpha is dropped in
/// place), so one decode stays under 176 MiB plus the file itself, and a loader worker under
/// ~256 MB. A baseline JPEG needs 3 bytes per pixel at most (48 MiB here), less at a DCT scale.
constexpr int64_t kDefaultMaxImagePixels = int64_t(1) << 24;

/// Decoding limits. Example: `decode_image(path, DecodeOptions().max_pixels(int64_t(1) << 26))`.
struct DecodeOptions {
  /// Largest width x height accepted, checked from the header before any pixel memory is
  /// allocated. Default kDefaultMaxImagePixels (2^24).
  TORCH_ARG(int64_t, max_pixels) = kDefaultMaxImagePixels;
};

namespace detail {

inline const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

}  // namespace detail

/// Reads a whole regular file into `bytes`, reusing its capacity; throws ImageError naming
/// the file when it cannot be opened or read, or is not a regular file. Directories, FIFOs,
/// sockets and devices are refused before they are opened (opening a FIFO would block until
/// a writer appears), and checked again on the opened descriptor.
inline void read_file(const std::string& path, std::vector<uint8_t>& bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw ImageError(path, std::string("cannot open: ") + std::strerror(errno));
  auto not_regular = [&] {
    return ImageError(path, std::string("not a regular file (") + detail::file_kind(st.st_mode) +
                                ")");
  };
  if (!S_ISREG(st.st_mode)) throw not_regular();
  // O_NONBLOCK: should the name have been swapped for a FIFO since stat, open returns at
  // once and fstat below refuses it. It does not affect reads from a regular file.
  struct Fd {
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } file{::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)};
  const int fd = file.fd;
  if (fd < 0) throw ImageError(path, std::string("cannot open: ") + std::strerror(errno));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw not_regular();
  // The size is a hint: the file may grow or shrink while we read.
  bytes.resize(static_cast<size_t>(st.st_size) + 1);
  size_t got = 0;
  for (;;) {
    if (got == bytes.size()) bytes.resize(bytes.size() * 2);
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ImageError(path, std::string("read error: ") + std::strerror(errno));
    }
    got += size_t(n);
  }
  bytes.resize(got);
}

/// Reads a whole regular file. Example: `auto bytes = mobilenet::read_file("a.jpg");`
inline std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_file(path, bytes);
  return bytes;
}

namespace detail {

inline bool is_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

inline bool is_png(const uint8_t* data, size_t size) {
  static const uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  return size >= 8 && std::memcmp(data, kMagic, 8) == 0;
}

inline void check_size(const ImageSize& s, const std::string& path, const DecodeOptions& o) {
  TORCH_CHECK(o.max_pixels() > 0, "DecodeOptions: max_pixels must be positive, got ",
              o.max_pixels());
  if (s.height <= 0 || s.width <= 0)
    throw ImageError(path, "unsupported image size " + std::to_string(s.width) + "x" +
                               std::to_string(s.height));
  // A 20-byte header can claim billions of pixels: refuse before allocating them.
  if (s.height > o.max_pixels() / s.width)
    throw ImageError(path, "image of " + std::to_string(s.width) + "x" +
                               std::to_string(s.height) + " pixels exceeds the limit of " +
                               std::to_string(o.max_pixels()) +
                               " pixels (DecodeOptions::max_pixels)");
}

inline ImageInfo probe_jpeg(const uint8_t* data, size_t size, const std::string& path) {
  try {
    JpegDecoder d(data, size);
    return ImageInfo{ImageFormat::kJpeg, {d.height(), d.width()}};
  } catch (const JpegError& e) {
    throw ImageError(path, std::string("corrupt JPEG header: ") + e.what());
  }
}

inline ImageInfo probe_png(const uint8_t* data, size_t size, const std::string& path) {
  // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4).
  if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0)
    throw ImageError(path, "corrupt PNG header");
  auto be32 = [](const uint8_t* p) {
    return (int64_t(p[0]) << 24) | (int64_t(p[1]) << 16) | (int64_t(p[2]) << 8) | p[3];
  };
  return ImageInfo{ImageFormat::kPng, {be32(data + 20), be32(data + 16)}};
}

// DCT scales used while decoding, smallest first: 1/8, 1/4, 1/2 and 1 (PIL's draft modes).
// libjpeg-turbo also offers 3/8, 5/8, 6/8 and 7/8, but only these four have SIMD inverse
// DCTs: on x86-64, decoding a 640x480 JPEG at 5/8, 6/8 or 7/8 took 1.1x, 1.2x and 1.7x as
// long as a full decode (3/8 no less than 1/2), and decoding plus resizing to 256x256 from
// 5/8, 6/8 or 7/8 took 1.09x, 1.18x and 1.46x as long as from the full decode: their
// scalar IDCTs cost more than resampling fewer rows saves.
inline const std::vector<JpegScale>& jpeg_downscales() {
  static const std::vector<JpegScale> factors = {{1, 8}, {1, 4}, {1, 2}, {1, 1}};
  return factors;
}

// Decodes a JPEG at scale f: the whole image, or with `window` (in scaled pixels) only the
// rows and columns of that window, plus what block alignment adds (files whose sampling
// factors libjpeg-turbo 2.1 cannot crop exactly decode whole). With `scratch`, pixels live
// in that (reused) buffer instead of a fresh allocation: the transform decodes into
// per-thread scratch memory, which avoids page faults per image.
inline DecodedImage decode_jpeg(const uint8_t* data, size_t size, const std::string& path,
                                JpegScale f, const PixelRect* window, const DecodeOptions& o,
                                std::vector<uint8_t>* scratch = nullptr) {
  std::optional<JpegDecoder> dec;
  try {
    dec.emplace(data, size);
  } catch (const JpegError& e) {
    throw ImageError(path, std::string("corrupt JPEG header: ") + e.what());
  }
  const ImageSize original{dec->height(), dec->width()};
  check_size(original, path, o);
  try {
    dec->start(f);
    const int64_t sw = dec->output_width(), sh = dec->output_height();
    int64_t x0 = 0, y0 = 0, y1 = sh;
    if (window && dec->can_crop()) {
      y0 = std::clamp<int64_t>(window->y0, 0, sh - 1);
      y1 = std::clamp<int64_t>(window->y1, y0 + 1, sh);
      const int64_t wx0 = std::clamp<int64_t>(window->x0, 0, sw - 1);
      const int64_t wx1 = std::clamp<int64_t>(window->x1, wx0 + 1, sw);
      if (wx0 > 0 || wx1 < sw) x0 = dec->crop(wx0, wx1 - wx0);
    }
    const int64_t w = dec->output_width(), h = y1 - y0;
    torch::Tensor out;
    if (scratch) {
      scratch->resize(size_t(h * w * 3));
      out = torch::from_blob(scratch->data(), {h, w, 3}, torch::kUInt8);
    } else {
      out = torch::empty({h, w, 3}, torch::kUInt8);
    }
    dec->read_rows(y0, y1, out.data_ptr<uint8_t>(), w * 3);
    return DecodedImage{out, original, ImageSize{sh, sw}, x0, y0};
  } catch (const JpegError& e) {
    throw ImageError(path, std::string("corrupt or truncated JPEG: ") + e.what());
  }
}

inline DecodedImage decode_png(const uint8_t* data, size_t size, const std::string& path,
                               const DecodeOptions& o) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, data, size)) {
    throw ImageError(path, std::string("corrupt PNG: ") + image.message);
  }
  // Freed on every path, including the throws below.
  std::unique_ptr<png_image, void (*)(png_image*)> guard(&image, &png_image_free);
  ImageSize original{image.height, image.width};
  check_size(original, path, o);
  // Read RGBA and drop alpha ourselves: PIL's convert("RGB") drops alpha, while libpng's
  // RGB output would composite onto black. 16-bit samples are taken as sRGB-encoded, so
  // they are only rescaled (PIL keeps the high byte: differences of at most 1).
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  const int channels = alpha ? 4 : 3;
  const int64_t n = original.height * original.width;
  torch::Tensor buffer = torch::empty({n * channels}, torch::kUInt8);
  uint8_t* px = buffer.data_ptr<uint8_t>();
  if (!png_image_finish_read(&image, nullptr, px, 0, nullptr)) {
    throw ImageError(path, std::string("corrupt or truncated PNG: ") + image.message);
  }
  if (alpha) {  // RGBA -> RGB in place (front to back: a pixel never overwrites unread ones)
    for (int64_t i = 0; i < n; ++i) {
      px[i * 3 + 0] = px[i * 4 + 0];
      px[i * 3 + 1] = px[i * 4 + 1];
      px[i * 3 + 2] = px[i * 4 + 2];
    }
  }
  torch::Tensor out = buffer.narrow(0, 0, n * 3).view({original.height, original.width, 3});
  return DecodedImage{out, original};
}

// The DCT scale for a JPEG so that, once decoded, the source region `region` (in full
// resolution pixels, width x height) still spans at least `target` pixels each way.
inline JpegScale choose_jpeg_scale(const ImageSize& original, double region_height,
                                   double region_width, const ImageSize& target) {
  for (const JpegScale& f : jpeg_downscales()) {
    double sx = double(jpeg_scaled(original.width, f)) / double(original.width);
    double sy = double(jpeg_scaled(original.height, f)) / double(original.height);
    // A small epsilon keeps exact fits (e.g. 640 -> 320 at 1/2) from failing on rounding.
    if (region_width * sx + 1e-6 >= double(target.width) &&
        region_height * sy + 1e-6 >= double(target.height))
      return f;
  }
  return JpegScale{1, 1};
}

}  // namespace detail

/// Reads the format and size from the header, without decoding pixels. Throws ImageError
/// for empty, unknown or corrupt headers and for sizes over `options.max_pixels()`.
inline ImageInfo probe_image(const uint8_t* data, size_t size, const std::string& path,
                             const DecodeOptions& options = {}) {
  if (size == 0) throw ImageError(path, "empty file");
  ImageInfo info;
  if (detail::is_jpeg(data, size)) {
    info = detail::probe_jpeg(data, size, path);
  } else if (detail::is_png(data, size)) {
    info = detail::probe_png(data, size, path);
  } else {
    throw ImageError(path, "not a JPEG or PNG file (unrecognised magic bytes)");
  }
  detail::check_size(info.size, path, options);
  return info;
}

/// Decodes encoded bytes (`path` only names them in errors) to uint8 HWC RGB.
///
/// For JPEG, decodes at the smallest DCT scale (1/8, 1/4, 1/2 or 1) at which the source
/// rectangle `region_height` x `region_width` (full-resolution pixels) still covers at
/// least `target` pixels. A target of {0, 0} asks for full resolution. PNG is always
/// decoded at full size.
/// With `scratch`, JPEG pixels may be decoded into that buffer (reused across calls; the
/// result is then only valid until the buffer changes).
inline DecodedImage decode_image_region(const uint8_t* data, size_t size,
                                        const std::string& path, double region_height,
                                        double region_width, const ImageSize& target,
                                        std::vector<uint8_t>* scratch = nullptr,
                                        const DecodeOptions& options = {}) {
  ImageInfo info = probe_image(data, size, path, options);
  if (info.format == ImageFormat::kPng) return detail::decode_png(data, size, path, options);
  detail::JpegScale f = target.height <= 0 && target.width <= 0
                            ? detail::JpegScale{1, 1}
                            : detail::choose_jpeg_scale(info.size, region_height, region_width,
                                                        target);
  return detail::decode_jpeg(data, size, path, f, nullptr, options, scratch);
}

namespace detail {

// Decodes what the resampling `spec` (in full-resolution coordinates) of an image with
// header `info` reads: a JPEG at the smallest DCT scale that keeps the output resolution,
// and only the rows and columns the filter taps (plus a margin: a cropped JPEG's edge
// columns may differ from a full decode's). PNGs decode whole.
inline DecodedImage decode_for_resample(const uint8_t* data, size_t size,
                                        const std::string& path, const ImageInfo& info,
                                        const ResampleSpec& spec, const DecodeOptions& options,
                                        std::vector<uint8_t>* scratch = nullptr) {
  if (info.format == ImageFormat::kPng) return decode_png(data, size, path, options);
  const JpegScale f = choose_jpeg_scale(info.size, spec.box.y1 - spec.box.y0,
                                        spec.box.x1 - spec.box.x0, {spec.out_h, spec.out_w});
  const ImageSize scaled{jpeg_scaled(info.size.height, f), jpeg_scaled(info.size.width, f)};
  const ResampleSpec s = rescale(spec, double(scaled.width) / double(info.size.width),
                                 double(scaled.height) / double(info.size.height));
  PixelRect window = resample_footprint(s, scaled.width, scaled.height);
  constexpr int64_t kMargin = 4;
  window.x0 -= kMargin;
  window.x1 += kMargin;
  return decode_jpeg(data, size, path, f, &window, options, scratch);
}

}  // namespace detail

/// Decodes encoded bytes at full resolution to uint8 HWC RGB.
inline torch::Tensor decode_image(const uint8_t* data, size_t size, const std::string& path,
                                  const DecodeOptions& options = {}) {
  return decode_image_region(data, size, path, 0, 0, ImageSize{0, 0}, nullptr, options).pixels;
}

/// Decodes a JPEG or PNG file to a uint8 HWC RGB tensor at full resolution.
/// Example: `torch::Tensor rgb = mobilenet::decode_image("val2017/000000000139.jpg");`
inline torch::Tensor decode_image(const std::string& path, const DecodeOptions& options = {}) {
  std::vector<uint8_t> bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), path, options);
}

/// Decodes a file, letting JPEGs decode at the smallest DCT scale whose result is still at
/// least `min_size` (height and width) — or at full size when the image is smaller.
/// Example: `decode_image(path, {256, 256})` decodes a 4000x3000 JPEG at 1/8: 500x375.
inline torch::Tensor decode_image(const std::string& path, ImageSize min_size,
                                  const DecodeOptions& options = {}) {
  std::vector<uint8_t> bytes = read_file(path);
  ImageInfo info = probe_image(bytes.data(), bytes.size(), path, options);
  return decode_image_region(bytes.data(), bytes.size(), path, double(info.size.height),
                             double(info.size.width), min_size, nullptr, options)
      .pixels;
}

}  // namespace mobilenet

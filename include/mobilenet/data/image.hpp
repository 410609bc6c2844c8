#pragma once
/// \file image.hpp
/// Image decoding: JPEG through TurboJPEG with DCT-scaled decoding, PNG through libpng.
///
/// The format is sniffed from the file's magic bytes, never from its extension, so a PNG
/// named `.jpg` decodes as PNG (PIL does the same). Anything that is not JPEG or PNG, and
/// every empty, truncated or corrupt file, raises `mobilenet::ImageError` naming the path.

#include <torch/torch.h>

#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mobilenet {

/// An image file could not be read or decoded. `path()` names the file, `what()` says why.
/// Example: `try { decode_image(p); } catch (const ImageError& e) { skip(e.path()); }`.
class ImageError : public std::runtime_error {
 public:
  ImageError(std::string path, const std::string& reason)
      : std::runtime_error(path + ": " + reason), path_(std::move(path)) {}
  /// The file that failed.
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
struct DecodedImage {
  torch::Tensor pixels;
  ImageSize original;
};

/// Reads a whole regular file into `bytes`, reusing its capacity; throws ImageError naming
/// the file when it cannot be opened or read, or is not a regular file.
inline void read_file(const std::string& path, std::vector<uint8_t>& bytes) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw ImageError(path, std::string("cannot open: ") + std::strerror(errno));
  // fopen accepts directories, and lseek on one can report an absurd size.
  struct stat st {};
  if (fstat(fileno(file.get()), &st) != 0 || !S_ISREG(st.st_mode))
    throw ImageError(path, "not a regular file");
  bytes.resize(static_cast<size_t>(st.st_size));
  bytes.resize(std::fread(bytes.data(), 1, bytes.size(), file.get()));
  // The file may have grown since fstat: read the rest in chunks.
  uint8_t chunk[1 << 14];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), file.get())) > 0) {
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  if (std::ferror(file.get())) throw ImageError(path, "read error");
}

/// Reads a whole regular file. Example: `auto bytes = mobilenet::read_file("a.jpg");`
inline std::vector<uint8_t> read_file(const std::string& path) {
  std::vector<uint8_t> bytes;
  read_file(path, bytes);
  return bytes;
}

namespace detail {

// Larger images are refused: a 20-byte header can claim 4 billion pixels, and we would
// rather report a bad file than allocate that. 2^28 pixels is a 16k x 16k photo.
constexpr int64_t kMaxImagePixels = int64_t(1) << 28;


inline bool is_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

inline bool is_png(const uint8_t* data, size_t size) {
  static const uint8_t kMagic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  return size >= 8 && std::memcmp(data, kMagic, 8) == 0;
}

// One TurboJPEG decompressor per thread: creating one costs an allocation, and a handle
// must not be shared between threads.
inline tjhandle tj_decompressor() {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h) tjDestroy(h);
    }
  };
  thread_local Handle handle;
  return handle.h;
}

// Photoshop writes CMYK JPEGs inverted and marks them with an Adobe APP14 segment; libjpeg
// (and so PIL) follow that convention, so we look for the segment. Walks the markers up
// to the first scan; malformed lengths just end the walk (TurboJPEG reports the error).
inline bool has_adobe_marker(const uint8_t* data, size_t size) {
  size_t pos = 2;
  while (pos + 4 <= size) {
    if (data[pos] != 0xFF) return false;
    uint8_t marker = data[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return false;  // start of scan / end of image
    size_t length = (size_t(data[pos + 2]) << 8) | data[pos + 3];
    if (length < 2) return false;
    if (marker == 0xEE && pos + 4 + 5 <= size && std::memcmp(data + pos + 4, "Adobe", 5) == 0)
      return true;
    pos += 2 + length;
  }
  return false;
}

// A JPEG's header as TurboJPEG reads it, with this thread's decompressor.
struct JpegHeader {
  tjhandle tj = nullptr;
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
};

inline JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& path) {
  JpegHeader h;
  h.tj = tj_decompressor();
  if (!h.tj) throw ImageError(path, "cannot create a TurboJPEG decompressor");
  if (tjDecompressHeader3(h.tj, data, static_cast<unsigned long>(size), &h.width, &h.height,
                          &h.subsamp, &h.colorspace) != 0) {
    throw ImageError(path, std::string("corrupt JPEG header: ") + tjGetErrorStr2(h.tj));
  }
  return h;
}

inline ImageInfo probe_jpeg(const uint8_t* data, size_t size, const std::string& path) {
  const JpegHeader h = read_jpeg_header(data, size, path);
  return ImageInfo{ImageFormat::kJpeg, {h.height, h.width}};
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

inline void check_size(const ImageSize& s, const std::string& path) {
  if (s.height <= 0 || s.width <= 0 || s.height * s.width > kMaxImagePixels) {
    throw ImageError(path, "unsupported image size " + std::to_string(s.width) + "x" +
                               std::to_string(s.height));
  }
}

// Scaling factors TurboJPEG can apply while decoding, restricted to <= 1, smallest first.
inline const std::vector<tjscalingfactor>& jpeg_downscales() {
  static const std::vector<tjscalingfactor> factors = [] {
    int n = 0;
    tjscalingfactor* all = tjGetScalingFactors(&n);
    std::vector<tjscalingfactor> v;
    for (int i = 0; i < n; ++i)
      if (all[i].num <= all[i].denom) v.push_back(all[i]);
    std::sort(v.begin(), v.end(), [](tjscalingfactor a, tjscalingfactor b) {
      return a.num * b.denom < b.num * a.denom;
    });
    if (v.empty()) v.push_back(tjscalingfactor{1, 1});
    return v;
  }();
  return factors;
}

inline int64_t jpeg_scaled(int64_t dim, tjscalingfactor f) {
  return (dim * f.num + f.denom - 1) / f.denom;
}

// With `scratch`, pixels live in that (reused) buffer instead of a fresh allocation: the
// transform decodes into per-thread scratch memory, which avoids page faults per image.
inline DecodedImage decode_jpeg(const uint8_t* data, size_t size, const std::string& path,
                                tjscalingfactor factor,
                                std::vector<uint8_t>* scratch = nullptr) {
  const JpegHeader header = read_jpeg_header(data, size, path);
  tjhandle tj = header.tj;
  const int width = header.width, height = header.height, colorspace = header.colorspace;
  ImageSize original{height, width};
  check_size(original, path);
  const int64_t sw = jpeg_scaled(width, factor), sh = jpeg_scaled(height, factor);
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int channels = cmyk ? 4 : 3;
  torch::Tensor out;
  if (scratch && !(colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)) {
    scratch->resize(size_t(sh * sw * channels));
    out = torch::from_blob(scratch->data(), {sh, sw, channels}, torch::kUInt8);
  } else {
    out = torch::empty({sh, sw, channels}, torch::kUInt8);
  }
  // Accurate (islow) DCT and fancy upsampling are TurboJPEG's defaults and PIL's, so a
  // full-scale decode is bit-identical to PIL's.
  int rc = tjDecompress2(tj, data, static_cast<unsigned long>(size), out.data_ptr<uint8_t>(),
                         static_cast<int>(sw), 0, static_cast<int>(sh),
                         cmyk ? TJPF_CMYK : TJPF_RGB, 0);
  if (rc != 0) {
    std::string message = tjGetErrorStr2(tj);
    // libjpeg recovers from most corrupt-data warnings as PIL does, but a truncated file
    // decodes as grey padding: that is an error, not an image.
    if (tjGetErrorCode(tj) == TJERR_FATAL || message.find("Premature end") != std::string::npos)
      throw ImageError(path, "corrupt or truncated JPEG: " + message);
  }
  if (cmyk) {
    // CMYK -> RGB as PIL converts it: R = (255 - C) * (255 - K) / 255 with PIL's rounding;
    // Adobe files store inverted values.
    const bool inverted = has_adobe_marker(data, size);
    torch::Tensor rgb = torch::empty({sh, sw, 3}, torch::kUInt8);
    const uint8_t* src = out.data_ptr<uint8_t>();
    uint8_t* dst = rgb.data_ptr<uint8_t>();
    auto muldiv255 = [](int a, int b) {
      int t = a * b + 128;
      return ((t >> 8) + t) >> 8;
    };
    for (int64_t i = 0, n = sh * sw; i < n; ++i, src += 4, dst += 3) {
      int k = inverted ? 255 - src[3] : src[3];
      int nk = 255 - k;
      for (int c = 0; c < 3; ++c) {
        int v = inverted ? 255 - src[c] : src[c];
        dst[c] = static_cast<uint8_t>(nk - muldiv255(v, nk));
      }
    }
    out = rgb;
  }
  return DecodedImage{out, original};
}

inline DecodedImage decode_png(const uint8_t* data, size_t size, const std::string& path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, data, size)) {
    throw ImageError(path, std::string("corrupt PNG: ") + image.message);
  }
  // Freed on every path, including the throws below.
  std::unique_ptr<png_image, void (*)(png_image*)> guard(&image, &png_image_free);
  ImageSize original{image.height, image.width};
  check_size(original, path);
  // Read RGBA and drop alpha ourselves: PIL's convert("RGB") drops alpha, while libpng's
  // RGB output would composite onto black. 16-bit samples are taken as sRGB-encoded, so
  // they are only rescaled (PIL keeps the high byte: differences of at most 1).
  const bool alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  image.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
  const int channels = alpha ? 4 : 3;
  torch::Tensor out = torch::empty({original.height, original.width, channels}, torch::kUInt8);
  if (!png_image_finish_read(&image, nullptr, out.data_ptr<uint8_t>(), 0, nullptr)) {
    throw ImageError(path, std::string("corrupt or truncated PNG: ") + image.message);
  }
  if (alpha) out = out.narrow(2, 0, 3).contiguous();
  return DecodedImage{out, original};
}

// The DCT scale for a JPEG so that, once decoded, the source region `region` (in full
// resolution pixels, width x height) still spans at least `target` pixels each way.
inline tjscalingfactor choose_jpeg_scale(const ImageSize& original, double region_height,
                                         double region_width, const ImageSize& target) {
  for (const tjscalingfactor& f : jpeg_downscales()) {
    double sx = double(jpeg_scaled(original.width, f)) / double(original.width);
    double sy = double(jpeg_scaled(original.height, f)) / double(original.height);
    // A small epsilon keeps exact fits (e.g. 640 -> 320 at 1/2) from failing on rounding.
    if (region_width * sx + 1e-6 >= double(target.width) &&
        region_height * sy + 1e-6 >= double(target.height))
      return f;
  }
  return tjscalingfactor{1, 1};
}

}  // namespace detail

/// Reads the format and size from the header, without decoding pixels.
/// Throws ImageError for empty, unknown or corrupt headers.
inline ImageInfo probe_image(const uint8_t* data, size_t size, const std::string& path) {
  if (size == 0) throw ImageError(path, "empty file");
  ImageInfo info;
  if (detail::is_jpeg(data, size)) {
    info = detail::probe_jpeg(data, size, path);
  } else if (detail::is_png(data, size)) {
    info = detail::probe_png(data, size, path);
  } else {
    throw ImageError(path, "not a JPEG or PNG file (unrecognised magic bytes)");
  }
  detail::check_size(info.size, path);
  return info;
}

/// Decodes encoded bytes (`path` only names them in errors) to uint8 HWC RGB.
///
/// For JPEG, decodes at the smallest DCT scale (1/8, 2/8, ... 1) at which the source
/// rectangle `region_height` x `region_width` (full-resolution pixels) still covers at
/// least `target` pixels. A target of {0, 0} asks for full resolution. PNG is always
/// decoded at full size.
/// With `scratch`, JPEG pixels may be decoded into that buffer (reused across calls; the
/// result is then only valid until the buffer changes).
inline DecodedImage decode_image_region(const uint8_t* data, size_t size,
                                        const std::string& path, double region_height,
                                        double region_width, const ImageSize& target,
                                        std::vector<uint8_t>* scratch = nullptr) {
  ImageInfo info = probe_image(data, size, path);
  if (info.format == ImageFormat::kPng) return detail::decode_png(data, size, path);
  tjscalingfactor f = target.height <= 0 && target.width <= 0
                          ? tjscalingfactor{1, 1}
                          : detail::choose_jpeg_scale(info.size, region_height, region_width,
                                                      target);
  return detail::decode_jpeg(data, size, path, f, scratch);
}

/// Decodes encoded bytes at full resolution to uint8 HWC RGB.
inline torch::Tensor decode_image(const uint8_t* data, size_t size, const std::string& path) {
  return decode_image_region(data, size, path, 0, 0, ImageSize{0, 0}).pixels;
}

/// Decodes a JPEG or PNG file to a uint8 HWC RGB tensor at full resolution.
/// Example: `torch::Tensor rgb = mobilenet::decode_image("val2017/000000000139.jpg");`
inline torch::Tensor decode_image(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

/// Decodes a file, letting JPEGs decode at the smallest DCT scale whose result is still at
/// least `min_size` (height and width) — or at full size when the image is smaller.
/// Example: `decode_image(path, {256, 256})` decodes a 4000x3000 JPEG at 1/8: 500x375.
inline torch::Tensor decode_image(const std::string& path, ImageSize min_size) {
  std::vector<uint8_t> bytes = read_file(path);
  ImageInfo info = probe_image(bytes.data(), bytes.size(), path);
  return decode_image_region(bytes.data(), bytes.size(), path, double(info.size.height),
                             double(info.size.width), min_size)
      .pixels;
}

}  // namespace mobilenet

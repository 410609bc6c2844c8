#pragma once
/// \file data/detail/jpeg_decoder.hpp
/// JPEG decoding through the libjpeg API of libjpeg-turbo: DCT-scaled output, region decoding
/// (jpeg_crop_scanline / jpeg_skip_scanlines), and errors that never outlive one decode.
///
/// Every decode owns its own jpeg_decompress_struct, destroyed when it ends: an error in one
/// file cannot leave state behind for the next (a per-thread TurboJPEG handle in
/// libturbojpeg 2.1.5 did, failing every later file on that thread).
///
/// Corrupt-data warnings that mean lost pixels are errors here: a truncated file, a scan
/// cut short by a marker, bad Huffman or arithmetic codes, a missing restart marker. libjpeg
/// would pad such images with grey. Warnings that lose nothing stay accepted, as PIL accepts
/// them: extraneous bytes before a marker, an unknown JFIF revision or Adobe transform code,
/// an odd progression sequence or SOS parameters, a bad ICC marker.

#include <cstdio>  // jpeglib.h needs FILE and size_t declared first

// clang-format off
#include <jpeglib.h>
#include <jerror.h>  // after jpeglib.h: its message list depends on jconfig.h
// clang-format on

#include <csetjmp>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace mobilenet {
namespace detail {

/// A DCT scale num / denom (libjpeg-turbo offers k/8 for k = 1..8; image.hpp uses 1/8,
/// 1/4, 1/2 and 1, see jpeg_downscales).
struct JpegScale {
  int num = 1;
  int denom = 1;
};

/// The decoded size of `dim` pixels at scale f (libjpeg rounds up).
inline int64_t jpeg_scaled(int64_t dim, JpegScale f) {
  return (dim * f.num + f.denom - 1) / f.denom;
}

/// A libjpeg error or a data-losing warning; the caller adds the file name.
class JpegError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Photoshop writes CMYK JPEGs inverted and marks them with an Adobe APP14 segment; libjpeg
// (and so PIL) follow that convention, so we look for the segment the way PIL does (the
// prefix "Adobe", whatever the length). Walks the markers up to the first scan; malformed
// lengths just end the walk (libjpeg reports the error).
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

// libjpeg's error manager with a jump target: libjpeg is C, so an exception must not unwind
// through it. A fatal error (or a data-losing warning) longjmps back to JpegDecoder::guard,
// whose frame is the only C++ frame in between, and guard throws from there.
struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

inline bool jpeg_warning_loses_data(int code) {
  switch (code) {
    case JWRN_JPEG_EOF:         // "Premature end of JPEG file": truncated
    case JWRN_HIT_MARKER:       // "premature end of data segment": a scan cut short
    case JWRN_HUFF_BAD_CODE:    // corrupt entropy-coded data
#if JPEG_LIB_VERSION >= 70 || defined(D_ARITH_CODING_SUPPORTED)
    case JWRN_ARITH_BAD_CODE:
#endif
    case JWRN_MUST_RESYNC:      // a restart marker missing: rows were lost
      return true;
    default:
      return false;
  }
}

// Progressive files with more scans than this are refused: each scan makes another pass over
// the whole coefficient buffer, so a small file of repeated scans can take minutes to decode.
// Real encoders write about 10 (libjpeg's default script) and rarely more than a few dozen;
// libjpeg-turbo's own tools suggest 500 as a limit.
constexpr int kMaxJpegScans = 500;

extern "C" {
inline void mobilenet_jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

inline void mobilenet_jpeg_emit_message(j_common_ptr cinfo, int level) {
  // level >= 0: trace messages. Warnings (-1) that lose pixels end the decode.
  if (level < 0 && jpeg_warning_loses_data(cinfo->err->msg_code)) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
  }
}

inline void mobilenet_jpeg_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    std::snprintf(err->message, sizeof(err->message), "more than %d scans", kMaxJpegScans);
    std::longjmp(err->jump, 1);
  }
}
}

/// One JPEG decode: header, then (optionally) a DCT scale and a window, then rows.
/// Every method throws JpegError; after one has thrown, the object may only be destroyed.
class JpegDecoder {
 public:
  /// Reads the header (no pixel memory is allocated yet).
  JpegDecoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
    int rc = JPEG_HEADER_OK;
    guard([&] {
      jpeg_create_decompress(&h_.cinfo);
      h_.cinfo.progress = &h_.progress;
      jpeg_mem_src(&h_.cinfo, data, static_cast<unsigned long>(size));
      rc = jpeg_read_header(&h_.cinfo, TRUE);
    });
    if (rc != JPEG_HEADER_OK) throw JpegError("JPEG has no image (tables only)");
  }
  JpegDecoder(const JpegDecoder&) = delete;
  JpegDecoder& operator=(const JpegDecoder&) = delete;

  int64_t width() const { return h_.cinfo.image_width; }
  int64_t height() const { return h_.cinfo.image_height; }
  bool cmyk() const {
    return h_.cinfo.jpeg_color_space == JCS_CMYK || h_.cinfo.jpeg_color_space == JCS_YCCK;
  }
  /// Starts decompression at scale f; output_width/height are then the scaled size.
  /// Accurate (islow) DCT and fancy upsampling are libjpeg's defaults and PIL's, so a
  /// full-scale decode is bit-identical to PIL's.
  void start(JpegScale f) {
    h_.cinfo.scale_num = static_cast<unsigned>(f.num);
    h_.cinfo.scale_denom = static_cast<unsigned>(f.denom);
    h_.cinfo.out_color_space = cmyk() ? JCS_CMYK : JCS_EXT_RGB;
    h_.cinfo.dct_method = JDCT_ISLOW;
    h_.cinfo.do_fancy_upsampling = TRUE;
    guard([&] {
      jpeg_start_decompress(&h_.cinfo);
      multi_scan_ = jpeg_has_multiple_scans(&h_.cinfo) != 0;
    });
    inverted_ = cmyk() && has_adobe_marker(data_, size_);
  }
  int64_t output_width() const { return h_.cinfo.output_width; }
  int64_t output_height() const { return h_.cinfo.output_height; }

  /// True when this file's sampling factors are ones libjpeg-turbo 2.1 crops exactly
  /// (<= 2 each way; it miscomputes 4x2 and 2x4 chroma when scaling).
  bool can_crop() const {
    for (int c = 0; c < h_.cinfo.num_components; ++c)
      if (h_.cinfo.comp_info[c].h_samp_factor > 2 || h_.cinfo.comp_info[c].v_samp_factor > 2)
        return false;
    return true;
  }

  /// Restricts rows to columns [x0, x0 + w) of the scaled image; libjpeg moves x0 left to
  /// a block boundary. Returns the column the output now starts at; output_width() is the
  /// new width. Columns at a cropped edge may differ from a full decode (the chroma
  /// upsampler sees an edge there): callers ask for a margin.
  int64_t crop(int64_t x0, int64_t w) {
    JDIMENSION xoffset = static_cast<JDIMENSION>(x0), width = static_cast<JDIMENSION>(w);
    guard([&] { jpeg_crop_scanline(&h_.cinfo, &xoffset, &width); });
    return int64_t(xoffset);
  }

  /// Decodes rows [y0, y1) of the scaled image into `out` (RGB, `stride` bytes per row).
  ///
  /// Rows below y1 are not decoded. A file cut short is still refused: its scan must end
  /// in a marker (a truncated file has none), checked on the remaining bytes. Damage that
  /// a marker closes off below the rows read (a scan cut short and followed by an end
  /// marker, corrupt codes) goes unnoticed; the rows returned are then exactly right, and
  /// a decode that reaches the damage fails.
  void read_rows(int64_t y0, int64_t y1, uint8_t* out, int64_t stride) {
    const int64_t w = output_width(), h = output_height();
    if (cmyk()) row_.resize(size_t(w) * 4);
    // Skipping from row 0 starts on a row-group boundary, the case libjpeg-turbo 2.1's
    // jpeg_skip_scanlines handles exactly.
    guard([&] {
      if (y0 > 0) jpeg_skip_scanlines(&h_.cinfo, static_cast<JDIMENSION>(y0));
      for (int64_t y = y0; y < y1; ++y) {
        JSAMPROW row = cmyk() ? row_.data() : out + (y - y0) * stride;
        jpeg_read_scanlines(&h_.cinfo, &row, 1);
        if (cmyk()) cmyk_to_rgb(row_.data(), out + (y - y0) * stride, w);
      }
      if (y1 == h) jpeg_finish_decompress(&h_.cinfo);  // reads up to the end marker
    });
    if (y1 < h && !rest_has_marker()) throw JpegError("Premature end of JPEG file");
  }

 private:
  // Runs `f`, whose libjpeg calls may longjmp back here; f must not own anything with a
  // destructor (none is run by a longjmp).
  template <class F>
  void guard(F&& f) {
    if (setjmp(h_.err.jump) == 0) {
      f();
      return;
    }
    throw JpegError(h_.err.message);
  }

  // Whether the data after libjpeg's read position holds a marker, so that the scan being
  // decoded ends instead of being cut off. In entropy-coded data 0xFF is followed by a
  // stuffed 0x00 or a restart marker (0xD0-0xD7); anything else is a marker. Multi-scan
  // (progressive) files were read to their end by jpeg_start_decompress already.
  bool rest_has_marker() const {
    if (h_.cinfo.unread_marker != 0 || multi_scan_) return true;
    const uint8_t* p = h_.cinfo.src->next_input_byte;
    const uint8_t* end = p + h_.cinfo.src->bytes_in_buffer;
    while (p < end) {
      p = static_cast<const uint8_t*>(std::memchr(p, 0xFF, size_t(end - p)));
      if (!p) return false;
      while (p < end && *p == 0xFF) ++p;  // fill bytes
      if (p == end) return false;
      if (*p != 0x00 && (*p < 0xD0 || *p > 0xD7)) return true;
      ++p;
    }
    return false;
  }

  // CMYK -> RGB as PIL converts it: R = (255 - C) * (255 - K) / 255 with PIL's rounding;
  // Adobe files store inverted values.
  void cmyk_to_rgb(const uint8_t* src, uint8_t* dst, int64_t n) const {
    auto muldiv255 = [](int a, int b) {
      int t = a * b + 128;
      return ((t >> 8) + t) >> 8;
    };
    for (int64_t i = 0; i < n; ++i, src += 4, dst += 3) {
      const int k = inverted_ ? 255 - src[3] : src[3];
      const int nk = 255 - k;
      for (int c = 0; c < 3; ++c) {
        const int v = inverted_ ? 255 - src[c] : src[c];
        dst[c] = static_cast<uint8_t>(nk - muldiv255(v, nk));
      }
    }
  }

  // The libjpeg object and its error manager, destroyed with the decoder, also when the
  // constructor throws. jpeg_destroy_decompress is safe on a half-created object.
  struct Handle {
    jpeg_decompress_struct cinfo{};
    JpegErrorManager err{};
    jpeg_progress_mgr progress{};
    Handle() {
      cinfo.err = jpeg_std_error(&err.pub);
      err.pub.error_exit = &mobilenet_jpeg_error_exit;
      err.pub.emit_message = &mobilenet_jpeg_emit_message;
      progress.progress_monitor = &mobilenet_jpeg_progress;
    }
    ~Handle() { jpeg_destroy_decompress(&cinfo); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
  };

  const uint8_t* data_;
  size_t size_;
  Handle h_;
  bool inverted_ = false;
  bool multi_scan_ = false;
  std::vector<uint8_t> row_;
};

}  // namespace detail
}  // namespace mobilenet

// Multi-label transforms (squish resize, EvalCrop) and the augmentations of augment.hpp
// against torchvision and PIL.
//
// tests/python/transforms_reference.py (run here with /usr/bin/python3) writes the input
// images and torchvision.transforms.functional's outputs on them (uint8 CHW tensors, the
// parameters RandAugment would pass), plus PIL / torchvision resizes. Tolerances, per op:
//   posterize, solarize, equalize, autocontrast, identity, translate: bit-exact;
//   brightness, color, contrast, sharpness: same float32 formula, at most 1 level on at most
//     0.5% of the values (a compiler that fuses a*x + b*y into an FMA may round differently
//     at a truncation boundary; bit-exact with g++ 12 on x86-64);
//   rotate, shear (nearest): at most 0.5% of the pixels differ (our coordinates are double,
//     torch's float32: a source coordinate near a half pixel picks the neighbour; measured
//     0.17% at 30 degrees); bilinear: also at most 1 level (measured <= 0.45% of pixels);
//   bilinear with a fill colour: against torchvision's sampling plus (1 - coverage) * fill,
//     see transforms_reference.py (torchvision's own fill path scales the edge band twice);
//   squish resize: bit-exact uint8 against PIL, 1e-5 after normalisation against torchvision.
#include <doctest/doctest.h>

#include <mobilenet/data/image.hpp>
#include <mobilenet/data/transforms.hpp>

#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fixtures.hpp"

namespace {

using mobilenet::test::FixtureSet;
using mobilenet::test::max_abs_diff;
using mobilenet::test::max_abs_diff_f;
using mobilenet::test::Ref;

const FixtureSet& fixtures() {
  static FixtureSet f("transforms_reference.py", "transforms_fixtures", 51);
  return f;
}

torch::Tensor input(int i) { return fixtures().load("input_" + std::to_string(i)); }



// Fraction of HxWx3 pixels with any channel different.
double pixels_differing(const torch::Tensor& a, const torch::Tensor& b) {
  return (a != b).any(2).to(torch::kDouble).mean().item<double>();
}

double values_differing(const torch::Tensor& a, const torch::Tensor& b) {
  return (a != b).to(torch::kDouble).mean().item<double>();
}

// The changed region of `after` against `before`: [y0, y1) x [x0, x1), empty if none.
struct Box {
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0, changed = 0;
};
Box changed_box(const torch::Tensor& before, const torch::Tensor& after) {
  torch::Tensor diff = (before != after).any(2);
  Box b;
  b.changed = diff.sum().item<int64_t>();
  if (b.changed == 0) return b;
  torch::Tensor rows = diff.any(1).nonzero(), cols = diff.any(0).nonzero();
  b.y0 = rows.min().item<int64_t>();
  b.y1 = rows.max().item<int64_t>() + 1;
  b.x0 = cols.min().item<int64_t>();
  b.x1 = cols.max().item<int64_t>() + 1;
  return b;
}

bool is_geometric(mobilenet::AugmentOp op) {
  using mobilenet::AugmentOp;
  return op == AugmentOp::rotate || op == AugmentOp::shear_x || op == AugmentOp::shear_y ||
         op == AugmentOp::translate_x || op == AugmentOp::translate_y;
}

}  // namespace

TEST_CASE("every RandAugment op matches torchvision.transforms.functional on uint8 images") {
  using mobilenet::AugmentOp;
  std::set<std::string> covered;
  int cases = 0;
  for (const Ref& r : fixtures().list) {
    if (r.name.rfind("op_", 0) != 0) continue;
    const AugmentOp op = mobilenet::parse_augment_op(r.kind);
    const double magnitude = r.extra[1];
    const auto interp = r.extra[2] != 0 ? mobilenet::AugmentInterpolation::bilinear
                                        : mobilenet::AugmentInterpolation::nearest;
    const mobilenet::Rgb fill = {uint8_t(r.extra[4]), uint8_t(r.extra[5]), uint8_t(r.extra[6])};
    CAPTURE(r.name);
    CAPTURE(r.kind);
    CAPTURE(magnitude);
    CAPTURE(r.extra[2]);
    const torch::Tensor in = input(int(r.extra[0]));
    const torch::Tensor ours = mobilenet::augment_op(in, op, magnitude, interp, fill);
    const torch::Tensor expected = fixtures().load(r.name);
    const int max_diff = max_abs_diff(ours, expected);
    if (op == AugmentOp::rotate || op == AugmentOp::shear_x || op == AugmentOp::shear_y) {
      CHECK(pixels_differing(ours, expected) <= 0.005);
      if (interp == mobilenet::AugmentInterpolation::bilinear) CHECK(max_diff <= 1);
    } else if (op == AugmentOp::brightness || op == AugmentOp::color ||
               op == AugmentOp::contrast || op == AugmentOp::sharpness) {
      CHECK(max_diff <= 1);
      CHECK(values_differing(ours, expected) <= 0.005);
    } else {
      CHECK(max_diff == 0);  // integer ops and whole-pixel translations
    }
    // The op did something (the reference is not the input), except where it cannot.
    if (op != AugmentOp::identity && !(op == AugmentOp::posterize && magnitude == 8) &&
        !(op == AugmentOp::solarize && magnitude == 255) && r.extra[0] != 2)
      CHECK(!torch::equal(expected, in));
    covered.insert(r.kind);
    ++cases;
  }
  CHECK(covered.size() == mobilenet::all_augment_ops().size());
  CHECK(cases > 50);
}

TEST_CASE("geometric ops keep the image size and fill uncovered pixels with the fill colour") {
  const torch::Tensor in = input(0);
  const mobilenet::Rgb fill = {1, 254, 3};
  for (auto op : mobilenet::all_augment_ops()) {
    if (!is_geometric(op)) continue;
    CAPTURE(mobilenet::to_string(op));
    const double m = op == mobilenet::AugmentOp::rotate ? 30.0
                     : (op == mobilenet::AugmentOp::translate_x ||
                        op == mobilenet::AugmentOp::translate_y)
                         ? 20.0
                         : 0.3;
    torch::Tensor out =
        mobilenet::augment_op(in, op, m, mobilenet::AugmentInterpolation::nearest, fill);
    CHECK((out.sizes() == in.sizes()));
    torch::Tensor is_fill = (out.select(2, 0) == 1) & (out.select(2, 1) == 254) &
                            (out.select(2, 2) == 3);
    CHECK(is_fill.any().item<bool>());  // something came from outside
    CHECK(!is_fill.all().item<bool>());
  }
  // Translation by +20 columns: the first 20 columns are fill, the rest the shifted input.
  torch::Tensor t = mobilenet::augment_op(in, mobilenet::AugmentOp::translate_x, 20.9,
                                          mobilenet::AugmentInterpolation::nearest, fill);
  CHECK(torch::equal(t.slice(1, 20), in.slice(1, 0, in.size(1) - 20)));
  CHECK((t.slice(1, 0, 20).select(2, 1) == 254).all().item<bool>());
}

TEST_CASE("randaugment_magnitude matches torchvision RandAugment's table on the 0..30 scale") {
  for (auto op : mobilenet::all_augment_ops()) {
    const std::string name = std::string("magnitude_") + mobilenet::to_string(op);
    CAPTURE(name);
    const torch::Tensor expected = fixtures().load(name).flatten().to(torch::kDouble);
    REQUIRE(expected.size(0) == mobilenet::kRandAugmentMaxMagnitude + 1);
    for (int64_t level = 0; level <= mobilenet::kRandAugmentMaxMagnitude; ++level) {
      const double ours = mobilenet::randaugment_magnitude(op, level, 57, 83);
      CHECK(ours == doctest::Approx(expected[level].item<double>()).epsilon(1e-6));
    }
    CHECK(mobilenet::augment_op_signed(op) == (fixtures().ref(name).extra[0] != 0));
  }
}

TEST_CASE("squish resize matches PIL resize((s, s)) exactly and torchvision Resize((s, s)) "
          "+ Normalize to float rounding, from a tensor and from a file") {
  const std::string png = fixtures().path("squish.png");
  const torch::Tensor img = mobilenet::decode_image(png);  // PNG: PIL's pixels exactly
  for (int64_t s : {64, 150}) {
    CAPTURE(s);
    const std::string suffix = "_" + std::to_string(s);
    auto eval = mobilenet::eval_transform(s);
    REQUIRE(eval.fixed_output_size().has_value());
    CHECK(eval.fixed_output_size()->height == s);
    CHECK(eval.fixed_output_size()->width == s);
    // Geometry alone, uint8: the whole image, nothing cropped.
    mobilenet::SampleRng rng(0);
    auto plan = eval.plan({img.size(0), img.size(1)}, rng);
    CHECK(plan.box.x0 == 0);
    CHECK(plan.box.y0 == 0);
    CHECK(plan.box.x1 == img.size(1));
    CHECK(plan.box.y1 == img.size(0));
    torch::Tensor u8 = mobilenet::Transform::resample({img, {img.size(0), img.size(1)}}, plan);
    CHECK(max_abs_diff(u8, fixtures().load("squish_pil" + suffix)) == 0);
    // Normalised float CHW, from the tensor and from the file.
    const torch::Tensor expected = fixtures().load("squish_tv" + suffix);
    CHECK(max_abs_diff_f(eval(img, 0), expected) <= 1e-5);
    CHECK(max_abs_diff_f(eval(png, 0), expected) <= 1e-5);
    CHECK(max_abs_diff_f(mobilenet::eval_transform(s, mobilenet::EvalCrop::squish)(png, 0),
                         expected) <= 1e-5);
    // Without normalisation: PIL's levels / 255.
    torch::Tensor plain = mobilenet::eval_transform(s, false)(img, 0);
    CHECK(max_abs_diff_f(plain.permute({1, 2, 0}),
                         fixtures().load("squish_pil" + suffix).to(torch::kFloat) / 255.0) <=
          1e-6);
  }
}

TEST_CASE("squish resize of an uneven small downscale (84x73 to 64) matches PIL exactly") {
  // Pillow 13.0 changed the rounding of this case; the 2.11 venv pins Pillow 12.2 (see
  // scripts/requirements/torch2.11.txt). A failure here with a newer Pillow is that change.
  const torch::Tensor img = mobilenet::decode_image(fixtures().path("squish_odd.png"));
  auto eval = mobilenet::eval_transform(64);
  mobilenet::SampleRng rng(0);
  auto plan = eval.plan({img.size(0), img.size(1)}, rng);
  torch::Tensor u8 = mobilenet::Transform::resample({img, {img.size(0), img.size(1)}}, plan);
  CHECK(max_abs_diff(u8, fixtures().load("squish_pil_odd_64")) == 0);
}

TEST_CASE("normalize_u8 equals torch's x.float() / 255, then (x - mean) / std, bit for bit, "
          "for every level, in the vector body and the scalar tail") {
  // 259 pixels: 256 through the AVX2 body (when the CPU has it), 3 through the scalar tail;
  // each channel sees every level 0..255. The reference is ATen's own arithmetic, as
  // torchvision's ToTensor + Normalize run it.
  const int64_t n = 259;
  std::vector<uint8_t> px(size_t(n) * 3);
  for (int64_t i = 0; i < n * 3; ++i) px[size_t(i)] = uint8_t((i * 7 + i / 3) % 256);
  std::vector<float> out(px.size());
  mobilenet::detail::normalize_u8(px.data(), n, mobilenet::kImageNetMean,
                                  mobilenet::kImageNetStd, out.data());
  const auto& m = mobilenet::kImageNetMean;
  const auto& sd = mobilenet::kImageNetStd;
  torch::Tensor expected = torch::from_blob(px.data(), {n, 3}, torch::kUInt8)
                               .to(torch::kFloat)
                               .div(255)
                               .sub(torch::tensor({m[0], m[1], m[2]}))
                               .div(torch::tensor({sd[0], sd[1], sd[2]}));
  torch::Tensor ours = torch::from_blob(out.data(), {n, 3}, torch::kFloat);
  CHECK(torch::equal(ours, expected));
  std::set<int> levels(px.begin(), px.end());
  CHECK(levels.size() == 256);
}

TEST_CASE("train_transform is the squish resize, flipped for about half the "
          "samples") {
  const std::string png = fixtures().path("squish.png");
  const torch::Tensor straight = fixtures().load("squish_tv_64");
  const torch::Tensor flipped = fixtures().load("squish_tv_flip_64");
  auto train = mobilenet::train_transform(64);
  int n_flipped = 0, n_straight = 0;
  for (int64_t i = 0; i < 40; ++i) {
    torch::Tensor x = train(png, mobilenet::sample_seed(5, 0, i));
    if (max_abs_diff_f(x, flipped) <= 1e-5) ++n_flipped;
    else if (max_abs_diff_f(x, straight) <= 1e-5) ++n_straight;
  }
  CHECK(n_flipped + n_straight == 40);
  CHECK(n_flipped >= 10);
  CHECK(n_straight >= 10);
  auto same = mobilenet::train_transform(64, mobilenet::TrainCrop::squish);
  CHECK(torch::equal(same(png, 17), train(png, 17)));
}

TEST_CASE("EvalCrop and TrainCrop round-trip through their names and rebuild the transform; "
          "unknown names are rejected with the name") {
  using mobilenet::EvalCrop;
  using mobilenet::TrainCrop;
  for (EvalCrop c : {EvalCrop::squish, EvalCrop::center})
    CHECK(mobilenet::parse_eval_crop(mobilenet::to_string(c)) == c);
  for (TrainCrop c : {TrainCrop::squish, TrainCrop::random_resized})
    CHECK(mobilenet::parse_train_crop(mobilenet::to_string(c)) == c);
  CHECK(std::string(mobilenet::to_string(EvalCrop::squish)) == "squish");
  CHECK(std::string(mobilenet::to_string(EvalCrop::center)) == "center");
  CHECK(std::string(mobilenet::to_string(TrainCrop::random_resized)) == "rrc");
  CHECK_THROWS_WITH_AS(mobilenet::parse_eval_crop("centre"), doctest::Contains("'centre'"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(mobilenet::parse_train_crop("random"), doctest::Contains("'random'"),
                       c10::Error);
  // EvalCrop::center is torchvision's Resize(int(s * 256 / 224)) + CenterCrop(s).
  const std::string png = fixtures().path("squish.png");
  const torch::Tensor img = mobilenet::decode_image(png);
  CHECK(max_abs_diff_f(mobilenet::eval_transform(64, EvalCrop::center)(img, 0),
                       fixtures().load("center_tv_64")) <= 1e-5);
  auto rrc = mobilenet::train_transform(64, TrainCrop::random_resized, true,
                                        mobilenet::RandomResizedCropOptions().scale_min(0.5));
  CHECK(rrc.fixed_output_size()->height == 64);
  CHECK((rrc(img, 3).sizes() == torch::IntArrayRef({3, 64, 64})));
  // The ImageNet recipes are the named imagenet_ presets.
  CHECK(torch::equal(mobilenet::imagenet_eval_transform(64)(img, 0),
                     mobilenet::eval_transform(64, EvalCrop::center)(img, 0)));
  auto imagenet = mobilenet::imagenet_train_transform(
      64, true, mobilenet::RandomResizedCropOptions().scale_min(0.5));
  CHECK(torch::equal(imagenet(img, 3), rrc(img, 3)));
}

TEST_CASE("Cutout paints clipped rectangles of round(size * side) pixels with the chosen "
          "fill") {
  const torch::Tensor in = torch::full({50, 70, 3}, 7, torch::kUInt8);
  const int64_t ch = 25, cw = 35;  // int(0.5 * side + 0.5), as ASL's CutoutPIL
  int full_size = 0, clipped = 0;
  std::set<std::vector<int>> colors;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    CAPTURE(seed);
    mobilenet::SampleRng rng(seed);
    torch::Tensor out = mobilenet::cutout(in, mobilenet::CutoutOptions().size(0.5), rng);
    Box b = changed_box(in, out);
    REQUIRE(b.changed > 0);
    // One solid rectangle: every pixel of the box changed, all to one colour.
    CHECK(b.changed == (b.y1 - b.y0) * (b.x1 - b.x0));
    torch::Tensor patch = out.slice(0, b.y0, b.y1).slice(1, b.x0, b.x1).reshape({-1, 3});
    CHECK(torch::equal(patch, patch[0].expand_as(patch)));
    colors.insert({patch[0][0].item<int>(), patch[0][1].item<int>(), patch[0][2].item<int>()});
    // Its full size, or cut by the border it touches.
    CHECK(b.y1 - b.y0 <= ch);
    CHECK(b.x1 - b.x0 <= cw);
    const bool touches = b.y0 == 0 || b.x0 == 0 || b.y1 == 50 || b.x1 == 70;
    if (b.y1 - b.y0 == ch && b.x1 - b.x0 == cw) ++full_size;
    else {
      CHECK(touches);
      ++clipped;
    }
  }
  CHECK(full_size > 10);
  CHECK(clipped > 10);
  CHECK(colors.size() > 250);  // random colour per image

  // Mean fill: ImageNet's mean colour; noise fill: many levels; count 3: up to 3 rectangles.
  mobilenet::SampleRng rng(1);
  torch::Tensor mean = mobilenet::cutout(
      in, mobilenet::CutoutOptions().size(0.2).fill(mobilenet::CutoutFill::mean), rng);
  Box b = changed_box(in, mean);
  torch::Tensor patch = mean.slice(0, b.y0, b.y1).slice(1, b.x0, b.x1).reshape({-1, 3});
  CHECK((patch.select(1, 0) == 124).all().item<bool>());
  CHECK((patch.select(1, 1) == 116).all().item<bool>());
  CHECK((patch.select(1, 2) == 104).all().item<bool>());
  torch::Tensor noise = mobilenet::cutout(
      in, mobilenet::CutoutOptions().size(0.5).fill(mobilenet::CutoutFill::noise), rng);
  b = changed_box(in, noise);
  CHECK(std::get<0>(at::_unique(noise.slice(0, b.y0, b.y1).slice(1, b.x0, b.x1))).numel() >
        200);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    mobilenet::SampleRng r(seed);
    torch::Tensor three = mobilenet::cutout(in, mobilenet::CutoutOptions().size(0.1).count(3), r);
    const int64_t changed = changed_box(in, three).changed;
    CHECK(changed > 0);
    CHECK(changed <= 3 * 5 * 7);
  }
  // p: never at 0, about half the samples at 0.5.
  int applied = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    mobilenet::SampleRng r0(seed), r1(seed);
    CHECK(torch::equal(mobilenet::cutout(in, mobilenet::CutoutOptions().p(0), r0), in));
    applied += !torch::equal(mobilenet::cutout(in, mobilenet::CutoutOptions().p(0.5), r1), in);
  }
  CHECK(applied > 150);
  CHECK(applied < 250);
}

TEST_CASE("RandAugment draws its ops from the list with random signs at the given magnitude") {
  const torch::Tensor in = input(0);
  auto o = mobilenet::RandAugmentOptions(1, 30).ops({mobilenet::AugmentOp::rotate});
  const torch::Tensor plus = mobilenet::augment_op(in, mobilenet::AugmentOp::rotate, 30.0);
  const torch::Tensor minus = mobilenet::augment_op(in, mobilenet::AugmentOp::rotate, -30.0);
  int n_plus = 0, n_minus = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    mobilenet::SampleRng rng(seed);
    torch::Tensor out = mobilenet::randaugment(in, o, rng);
    n_plus += torch::equal(out, plus);
    n_minus += torch::equal(out, minus);
  }
  CHECK(n_plus + n_minus == 40);
  CHECK(n_plus >= 8);
  CHECK(n_minus >= 8);
  // Two ops from {posterize, solarize} at level 30 (4 bits, threshold 0): one of the four
  // compositions, and every one of them shows up.
  using mobilenet::AugmentOp;
  auto two = mobilenet::RandAugmentOptions(2, 30).ops({AugmentOp::posterize, AugmentOp::solarize});
  auto apply = [&](AugmentOp a, AugmentOp b) {
    auto mag = [&](AugmentOp op) { return mobilenet::randaugment_magnitude(op, 30, 57, 83); };
    return mobilenet::augment_op(mobilenet::augment_op(in, a, mag(a)), b, mag(b));
  };
  std::vector<torch::Tensor> combos = {apply(AugmentOp::posterize, AugmentOp::posterize),
                                       apply(AugmentOp::posterize, AugmentOp::solarize),
                                       apply(AugmentOp::solarize, AugmentOp::posterize),
                                       apply(AugmentOp::solarize, AugmentOp::solarize)};
  std::vector<int> seen(4, 0);
  for (uint64_t seed = 0; seed < 80; ++seed) {
    mobilenet::SampleRng rng(seed);
    torch::Tensor out = mobilenet::randaugment(in, two, rng);
    int match = -1;
    for (int k = 0; k < 4; ++k)
      if (torch::equal(out, combos[size_t(k)])) match = k;
    CHECK(match >= 0);
    if (match >= 0) ++seen[size_t(match)];
  }
  for (int k = 0; k < 4; ++k) CHECK(seen[size_t(k)] > 5);
  // N = 0 and p = 0 leave the image alone.
  mobilenet::SampleRng rng(3);
  CHECK(torch::equal(mobilenet::randaugment(in, mobilenet::RandAugmentOptions(0, 9), rng), in));
  CHECK(torch::equal(mobilenet::randaugment(in, mobilenet::RandAugmentOptions(2, 9).p(0), rng),
                     in));
}

TEST_CASE("augmenting transforms are deterministic per (seed, epoch, sample) and differ "
          "across samples") {
  const std::string png = fixtures().path("squish.png");
  auto t = mobilenet::train_transform(64)
               .cutout(mobilenet::CutoutOptions().size(0.3))
               .randaugment(mobilenet::RandAugmentOptions(2, 9));
  const uint64_t s = mobilenet::sample_seed(7, 2, 11);
  torch::Tensor a = t(png, s), b = t(png, s);
  CHECK(torch::equal(a, b));
  CHECK(!torch::equal(a, t(png, mobilenet::sample_seed(7, 2, 12))));
  CHECK(!torch::equal(a, t(png, mobilenet::sample_seed(7, 3, 11))));
  // The same draws from a decoded tensor, into a caller's buffer, and without augmentation
  // the geometry and flip are unchanged (Cutout alone differs from the plain squish).
  const torch::Tensor img = mobilenet::decode_image(png);
  CHECK(torch::equal(t(img, s), a));
  torch::Tensor buf = torch::empty({64, 64, 3}, torch::kFloat);
  std::ifstream in(png, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  t.apply_bytes_into(bytes.data(), bytes.size(), png, s, buf.data_ptr<float>());
  CHECK(torch::equal(buf.permute({2, 0, 1}), a));
  auto plain = mobilenet::train_transform(64);
  auto with_cutout = mobilenet::train_transform(64).cutout(mobilenet::CutoutOptions());
  const torch::Tensor p = plain(png, s), c = with_cutout(png, s);
  CHECK(!torch::equal(p, c));
  CHECK((p != c).any(0).to(torch::kDouble).mean().item<double>() < 0.3);  // one 32x32 patch
}

TEST_CASE("bad augmentation options throw naming the option and the value") {
  mobilenet::Transform t;
  using mobilenet::CutoutOptions;
  using mobilenet::RandAugmentOptions;
  CHECK_THROWS_WITH_AS(t.randaugment(RandAugmentOptions(2, 31)),
                       doctest::Contains("magnitude (M) must be in [0, 30], got 31"), c10::Error);
  CHECK_THROWS_WITH_AS(t.randaugment(RandAugmentOptions(2, -1)),
                       doctest::Contains("magnitude (M) must be in [0, 30], got -1"), c10::Error);
  CHECK_THROWS_WITH_AS(t.randaugment(RandAugmentOptions(-1, 9)),
                       doctest::Contains("num_ops (N) must be >= 0, got -1"), c10::Error);
  CHECK_THROWS_WITH_AS(t.randaugment(RandAugmentOptions(2, 9).p(1.5)),
                       doctest::Contains("randaugment: p must be in [0, 1], got 1.5"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(t.randaugment(RandAugmentOptions(2, 9).ops({})),
                       doctest::Contains("ops must not be empty"), c10::Error);
  CHECK_THROWS_WITH_AS(t.cutout(CutoutOptions().size(0)),
                       doctest::Contains("cutout: size must be in (0, 1], got 0"), c10::Error);
  CHECK_THROWS_WITH_AS(t.cutout(CutoutOptions().size(1.25)),
                       doctest::Contains("cutout: size must be in (0, 1], got 1.25"), c10::Error);
  CHECK_THROWS_WITH_AS(t.cutout(CutoutOptions().p(-0.1)),
                       doctest::Contains("cutout: p must be in [0, 1], got -0.1"), c10::Error);
  CHECK_THROWS_WITH_AS(t.cutout(CutoutOptions().count(0)),
                       doctest::Contains("cutout: count must be >= 1, got 0"), c10::Error);
  CHECK_THROWS_WITH_AS(mobilenet::parse_augment_op("rotation"), doctest::Contains("'rotation'"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(mobilenet::parse_cutout_fill("grey"), doctest::Contains("'grey'"),
                       c10::Error);
  CHECK_THROWS_AS(mobilenet::augment_op(torch::zeros({4, 4, 3}), mobilenet::AugmentOp::equalize, 0),
                  c10::Error);  // float image
  for (auto f : {mobilenet::CutoutFill::random_color, mobilenet::CutoutFill::mean,
                 mobilenet::CutoutFill::noise})
    CHECK(mobilenet::parse_cutout_fill(mobilenet::to_string(f)) == f);
  for (auto op : mobilenet::all_augment_ops())
    CHECK(mobilenet::parse_augment_op(mobilenet::to_string(op)) == op);
}

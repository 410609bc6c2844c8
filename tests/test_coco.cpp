// COCO annotations, label maps and the demo data set. Targets are checked against
// tests/python/coco_reference.py (Python's json module), run on the same files.
#include <mobilenet/data/coco.hpp>
#include <mobilenet/data/label_map.hpp>
#include <mobilenet/demo.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "support.hpp"

namespace fs = std::filesystem;
using mobilenet::CocoDataset;
using mobilenet::CocoError;
using mobilenet::CocoOptions;

namespace {

fs::path scratch() {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("mobilenet_test_coco_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = (scratch() / name).string();
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int python(const std::vector<std::string>& args) {
  return mobilenet::test::run_python("coco_reference.py", args);
}

// COCO's 80 category ids: 1..90 without these ten.
std::vector<int64_t> coco_ids() {
  const std::set<int64_t> gaps{12, 26, 29, 30, 45, 66, 68, 69, 71, 83};
  std::vector<int64_t> ids;
  for (int64_t i = 1; i <= 90; ++i)
    if (!gaps.count(i)) ids.push_back(i);
  return ids;
}

// A COCO-shaped file: categories listed shuffled, image ids not sorted, a few crowd
// annotations, some images without any, booleans and integers for iscrowd, extra fields.
std::string synthetic_coco(const std::vector<int64_t>& category_ids, int images, uint32_t seed,
                           const std::string& name_prefix = "class ") {
  std::mt19937 rng(seed);
  std::vector<int64_t> cats = category_ids;
  std::shuffle(cats.begin(), cats.end(), rng);
  std::ostringstream j;
  j << "{\"info\": {\"year\": 2017}, \"licenses\": [], \"categories\": [";
  for (size_t k = 0; k < cats.size(); ++k)
    j << (k ? "," : "") << "{\"supercategory\": \"thing\", \"id\": " << cats[k]
      << ", \"name\": \"" << name_prefix << cats[k] << "\"}";
  j << "], \"images\": [";
  std::vector<int64_t> image_ids;
  for (int i = 0; i < images; ++i) image_ids.push_back(1000 + 7 * i + static_cast<int64_t>(rng() % 5));
  std::shuffle(image_ids.begin(), image_ids.end(), rng);
  for (size_t i = 0; i < image_ids.size(); ++i)
    j << (i ? "," : "") << "{\"license\": 1, \"file_name\": \"" << image_ids[i]
      << ".jpg\", \"height\": " << 100 + rng() % 400 << ", \"width\": " << 100 + rng() % 400
      << ", \"id\": " << image_ids[i] << "}";
  j << "], \"annotations\": [";
  int64_t ann = 5;
  bool first = true;
  for (int64_t id : image_ids) {
    const int n = (rng() % 4 == 0) ? 0 : 1 + static_cast<int>(rng() % 6);
    for (int a = 0; a < n; ++a) {
      const bool crowd = rng() % 8 == 0;
      j << (first ? "" : ",") << "{\"segmentation\": [[1.5, 2.5, 10.0, 2.5, 10.0, 20.25]], "
        << "\"area\": 120.5, \"iscrowd\": " << (crowd ? (rng() % 2 ? "1" : "true") : "0")
        << ", \"image_id\": " << id << ", \"bbox\": [1.5, 2.5, 8.5, 17.75], \"category_id\": "
        << category_ids[rng() % category_ids.size()] << ", \"id\": " << ann << "}";
      ann += 1 + rng() % 3;
      first = false;
    }
  }
  j << "]}";
  return j.str();
}

struct Reference {
  std::vector<int64_t> category_ids;
  std::string names;
  std::vector<std::vector<std::string>> rows;  // image id, file name, class indices
};

Reference python_targets(const std::string& ann, bool ignore_crowd, bool drop_empty) {
  const std::string out = ann + ".ref.txt";
  std::vector<std::string> args{"targets", ann, out};
  if (ignore_crowd) args.push_back("--ignore-crowd");
  if (drop_empty) args.push_back("--drop-empty");
  REQUIRE(python(args) == 0);
  std::ifstream in(out);
  Reference ref;
  std::string line;
  std::getline(in, line);
  std::istringstream ids(line);
  for (int64_t id; ids >> id;) ref.category_ids.push_back(id);
  std::getline(in, ref.names);
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::vector<std::string> row;
    for (std::string w; s >> w;) row.push_back(w);
    ref.rows.push_back(row);
  }
  return ref;
}

void check_against_python(const std::string& ann, bool ignore_crowd, bool drop_empty) {
  CAPTURE(ignore_crowd);
  CAPTURE(drop_empty);
  const CocoDataset ds = mobilenet::load_coco(
      ann, CocoOptions().ignore_crowd(ignore_crowd).keep_empty_images(!drop_empty));
  const Reference ref = python_targets(ann, ignore_crowd, drop_empty);
  REQUIRE(ds.num_classes() == static_cast<int64_t>(ref.category_ids.size()));
  std::string names;
  for (size_t k = 0; k < ds.categories.size(); ++k) {
    CHECK(ds.categories[k].id == ref.category_ids[k]);
    names += (k ? "|" : "") + ds.categories[k].name;
  }
  CHECK(names == ref.names);
  REQUIRE(ds.images.size() == ref.rows.size());
  const auto targets = ds.targets();
  const auto samples = ds.samples("imgs");
  for (size_t i = 0; i < ds.images.size(); ++i) {
    const auto& row = ref.rows[i];
    CHECK(std::to_string(ds.images[i].id) == row[0]);
    CHECK(ds.images[i].file_name == row[1]);
    std::vector<float> expected(static_cast<size_t>(ds.num_classes()), 0.0f);
    for (size_t w = 2; w < row.size(); ++w) expected[std::stoul(row[w])] = 1.0f;
    CHECK(ds.target(i) == expected);
    CHECK(samples[i].target == expected);
    CHECK(samples[i].id == ds.images[i].id);
    CHECK(samples[i].path == (fs::path("imgs") / row[1]).string());
    CHECK(std::vector<float>(targets[static_cast<int64_t>(i)].data_ptr<float>(),
                             targets[static_cast<int64_t>(i)].data_ptr<float>() + expected.size()) ==
          expected);
  }
}

// Expects a CocoError whose message names the file and contains every fragment.
void check_error(const std::string& name, const std::string& json,
                 const std::vector<std::string>& fragments, const CocoOptions& options = {}) {
  const std::string path = write_file(name, json);
  CAPTURE(name);
  try {
    mobilenet::load_coco(path, options);
    FAIL("no CocoError for " << name);
  } catch (const CocoError& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(e.file() == path);
    CHECK(what.find(path) == 0);
    for (const auto& f : fragments) CHECK_MESSAGE(what.find(f) != std::string::npos, f);
  }
}

const char* kImage = R"({"id": 1, "file_name": "a.jpg", "width": 4, "height": 3})";
const char* kCategory = R"({"id": 5, "name": "dog"})";
const char* kAnnotation = R"({"id": 9, "image_id": 1, "category_id": 5, "iscrowd": 0})";

std::string doc(const std::string& images, const std::string& annotations,
                const std::string& categories) {
  return "{\"images\": [" + images + "], \"annotations\": [" + annotations +
         "], \"categories\": [" + categories + "]}";
}

}  // namespace

TEST_CASE("COCO's 90 category ids map to 80 classes in ascending id order, as Python computes") {
  const auto ids = coco_ids();
  REQUIRE(ids.size() == 80);
  const auto ann = write_file("coco80.json", synthetic_coco(ids, 300, 1));
  const CocoDataset ds = mobilenet::load_coco(ann);
  CHECK(ds.num_classes() == 80);
  for (size_t k = 0; k < ids.size(); ++k) CHECK(ds.class_index(ids[k]) == static_cast<int64_t>(k));
  CHECK_THROWS_AS(ds.class_index(12), CocoError);
  for (bool ignore_crowd : {false, true})
    for (bool drop_empty : {false, true}) check_against_python(ann, ignore_crowd, drop_empty);
}

TEST_CASE("crowd annotations count as positives unless ignored, and empty images are kept unless dropped") {
  const std::string json = doc(
      R"({"id": 1, "file_name": "a.jpg", "width": 4, "height": 3},
         {"id": 2, "file_name": "b.jpg", "width": 4, "height": 3},
         {"id": 3, "file_name": "c.jpg", "width": 4, "height": 3})",
      R"({"id": 1, "image_id": 1, "category_id": 7, "iscrowd": 1},
         {"id": 2, "image_id": 2, "category_id": 5, "iscrowd": 0},
         {"id": 3, "image_id": 2, "category_id": 7, "iscrowd": true})",
      R"({"id": 7, "name": "cat"}, {"id": 5, "name": "dog"})");
  const auto path = write_file("crowd.json", json);
  const auto all = mobilenet::load_coco(path);
  CHECK(all.class_names() == std::vector<std::string>{"dog", "cat"});
  CHECK(all.labels == std::vector<std::vector<int64_t>>{{1}, {0, 1}, {}});
  CHECK(all.num_crowd == 2);
  const auto no_crowd = mobilenet::load_coco(path, CocoOptions().ignore_crowd(true));
  CHECK(no_crowd.labels == std::vector<std::vector<int64_t>>{{}, {0}, {}});
  CHECK(no_crowd.num_ignored_crowd == 2);
  const auto dropped =
      mobilenet::load_coco(path, CocoOptions().ignore_crowd(true).keep_empty_images(false));
  REQUIRE(dropped.images.size() == 1);
  CHECK(dropped.images[0].id == 2);
  CHECK(dropped.num_dropped_images == 2);
  CHECK(dropped.targets().sizes() == torch::IntArrayRef{1, 2});
}

TEST_CASE("bad annotation files raise CocoError naming the file and the offending field or id") {
  check_error("empty.json", "", {"malformed JSON"});
  check_error("not_json.json", "hello", {});
  check_error("truncated.json", "{\"images\": [" + std::string(kImage), {});
  check_error("array.json", "[]", {"top level must be an object"});
  check_error("trailing.json", doc(kImage, kAnnotation, kCategory) + " {}", {});
  check_error("no_images.json", R"({"annotations": [], "categories": []})", {"'images'"});
  check_error("no_annotations.json", R"({"images": [], "categories": []})", {"'annotations'"});
  check_error("no_categories.json", R"({"images": [], "annotations": []})", {"'categories'"});
  check_error("images_object.json", R"({"images": {}, "annotations": [], "categories": []})",
              {"'images' must be an array"});
  check_error("image_not_object.json", doc("3", "", ""), {"images[0] must be an object"});
  check_error("image_no_id.json", doc(R"({"file_name": "a.jpg", "width": 4, "height": 3})", "", ""),
              {"images[0]", "missing field 'id'"});
  check_error("image_no_file.json", doc(R"({"id": 4, "width": 4, "height": 3})", "", ""),
              {"images[0] (id 4)", "missing field 'file_name'"});
  check_error("image_no_width.json", doc(R"({"id": 4, "file_name": "a.jpg", "height": 3})", "", ""),
              {"(id 4)", "missing field 'width'"});
  check_error("image_no_height.json", doc(R"({"id": 4, "file_name": "a.jpg", "width": 3})", "", ""),
              {"(id 4)", "missing field 'height'"});
  check_error("image_string_id.json",
              doc(R"({"id": "4", "file_name": "a.jpg", "width": 4, "height": 3})", "", ""),
              {"images[0].id must be an integer"});
  check_error("image_float_width.json",
              doc(R"({"id": 4, "file_name": "a.jpg", "width": 4.5, "height": 3})", "", ""),
              {"(id 4).width must be an integer"});
  check_error("image_zero_height.json",
              doc(R"({"id": 4, "file_name": "a.jpg", "width": 4, "height": 0})", "", ""),
              {"(id 4)", "must be positive"});
  check_error("image_file_number.json",
              doc(R"({"id": 4, "file_name": 17, "width": 4, "height": 3})", "", ""),
              {"(id 4).file_name must be a string"});
  check_error("image_repeated_key.json",
              doc(R"({"id": 4, "file_name": "a.jpg", "width": 4, "width": 5, "height": 3})", "", ""),
              {"duplicate field 'width'"});
  check_error("duplicate_image.json",
              doc(std::string(kImage) + "," + R"({"id": 1, "file_name": "b.jpg", "width": 4, "height": 3})",
                  "", kCategory),
              {"duplicate image id 1"});
  check_error("duplicate_category.json",
              doc(kImage, "", std::string(kCategory) + R"(, {"id": 5, "name": "cat"})"),
              {"duplicate category id 5"});
  check_error("category_no_name.json", doc(kImage, "", R"({"id": 5})"),
              {"categories[0] (id 5)", "missing field 'name'"});
  check_error("category_no_id.json", doc(kImage, "", R"({"name": "dog"})"),
              {"categories[0]", "missing field 'id'"});
  check_error("duplicate_annotation.json",
              doc(kImage,
                  std::string(kAnnotation) + "," + R"({"id": 3, "image_id": 1, "category_id": 5}, )" +
                      kAnnotation,
                  kCategory),
              {"duplicate annotation id 9"});
  check_error("annotation_unknown_image.json",
              doc(kImage, R"({"id": 9, "image_id": 2, "category_id": 5})", kCategory),
              {"annotation 9", "unknown image_id 2"});
  check_error("annotation_unknown_category.json",
              doc(kImage, R"({"id": 9, "image_id": 1, "category_id": 6})", kCategory),
              {"annotation 9", "unknown category_id 6"});
  check_error("annotation_no_image.json", doc(kImage, R"({"id": 9, "category_id": 5})", kCategory),
              {"annotations[0] (id 9)", "missing field 'image_id'"});
  check_error("annotation_no_category.json", doc(kImage, R"({"id": 9, "image_id": 1})", kCategory),
              {"annotations[0] (id 9)", "missing field 'category_id'"});
  check_error("annotation_no_id.json", doc(kImage, R"({"image_id": 1, "category_id": 5})", kCategory),
              {"annotations[0]", "missing field 'id'"});
  check_error("annotation_crowd_2.json",
              doc(kImage, R"({"id": 9, "image_id": 1, "category_id": 5, "iscrowd": 2})", kCategory),
              {"(id 9).iscrowd must be 0, 1, true or false"});
  check_error("annotation_crowd_string.json",
              doc(kImage, R"({"id": 9, "image_id": 1, "category_id": 5, "iscrowd": "no"})", kCategory),
              {"(id 9).iscrowd must be 0, 1, true or false"});
  check_error("annotation_string_category.json",
              doc(kImage, R"({"id": 9, "image_id": 1, "category_id": "5"})", kCategory),
              {"(id 9).category_id must be an integer"});
  check_error("huge_id.json",
              doc(R"({"id": 99999999999999999999, "file_name": "a.jpg", "width": 4, "height": 3})", "", ""),
              {"images[0].id"});
  check_error("duplicate_top_level.json",
              R"({"images": [], "images": [], "annotations": [], "categories": []})",
              {"duplicate top-level field 'images'"});
  // Deep nesting: skipped without recursion where ignored, an error where it is read.
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  CHECK_NOTHROW(mobilenet::parse_coco(
      std::string_view("{\"info\": " + deep + ", \"images\": [], \"annotations\": [], \"categories\": []}"),
      "deep_info.json"));
  check_error("deep.json", doc(deep, "", ""), {"images[0] must be an object"});
  check_error("bad_utf8.json", doc(R"({"id": 1, "file_name": "a)" "\xff\xfe" R"(.jpg", "width": 4, "height": 3})", "", ""),
              {});
  check_error("unclosed_string.json", "{\"images\": [], \"annotations\": [], \"categories\": [{\"name\": \"dog}]}",
              {"malformed JSON"});
  CHECK_THROWS_WITH_AS(mobilenet::load_coco((scratch() / "missing.json").string()),
                       doctest::Contains("missing.json: cannot read the file"), CocoError);
}

TEST_CASE("every truncation of a valid annotation file raises CocoError, never crashes or loads") {
  const std::string json = synthetic_coco({1, 3, 8}, 6, 7);
  REQUIRE_NOTHROW(mobilenet::parse_coco(std::string_view(json), "whole.json"));
  for (size_t n = 0; n + 1 < json.size(); n += 1 + n / 40) {
    CAPTURE(n);
    // A prefix that ends inside a skipped value is still incomplete: it must not load.
    CHECK_THROWS_AS(mobilenet::parse_coco(std::string_view(json.data(), n), "cut.json"), CocoError);
  }
}

TEST_CASE("parsing annotations in windows gives what one whole-document pass gives") {
  using namespace mobilenet::detail;
  const std::string json = synthetic_coco(coco_ids(), 120, 11);
  const simdjson::padded_string padded(json);
  std::vector<mobilenet::CocoImage> images;
  std::vector<mobilenet::CocoCategory> categories;
  std::vector<CocoRawAnnotation> raw;
  coco_read_whole(padded, "whole.json", images, categories, raw);
  REQUIRE(raw.size() > 100);
  for (size_t window : {size_t(1), size_t(100), size_t(5000), kCocoWindow}) {
    CAPTURE(window);
    std::vector<mobilenet::CocoImage> wi;
    std::vector<mobilenet::CocoCategory> wc;
    std::vector<CocoRawAnnotation> wr;
    REQUIRE(coco_read_windowed(padded, "windowed.json", wi, wc, wr, window));
    REQUIRE(wi.size() == images.size());
    for (size_t i = 0; i < wi.size(); ++i) {
      CHECK(wi[i].id == images[i].id);
      CHECK(wi[i].file_name == images[i].file_name);
      CHECK(wi[i].width == images[i].width);
      CHECK(wi[i].height == images[i].height);
    }
    REQUIRE(wc.size() == categories.size());
    for (size_t k = 0; k < wc.size(); ++k) CHECK(wc[k].name == categories[k].name);
    REQUIRE(wr.size() == raw.size());
    for (size_t k = 0; k < wr.size(); ++k) {
      CHECK(wr[k].id == raw[k].id);
      CHECK(wr[k].image_id == raw[k].image_id);
      CHECK(wr[k].category_id == raw[k].category_id);
      CHECK(wr[k].crowd == raw[k].crowd);
    }
  }
  // Invalid input is never accepted by the windowed reader, whatever the window.
  auto rejected = [](const std::string& text) {
    const simdjson::padded_string p(text);
    std::vector<mobilenet::CocoImage> i;
    std::vector<mobilenet::CocoCategory> c;
    std::vector<CocoRawAnnotation> r;
    for (size_t window : {size_t(1), size_t(7), size_t(64), kCocoWindow})
      if (coco_read_windowed(p, "bad.json", i, c, r, window)) return false;
    return i.empty() && c.empty() && r.empty();
  };
  CHECK(rejected(doc(kImage, std::string(kAnnotation) + ",", kCategory)));
  CHECK(rejected(doc(kImage, "," + std::string(kAnnotation), kCategory)));
  CHECK(rejected(doc(kImage, std::string(kAnnotation) + ",," + kAnnotation, kCategory)));
  CHECK(rejected(doc(kImage, std::string(kAnnotation) + "}", kCategory)));
  CHECK(rejected(doc(kImage, kAnnotation, kCategory) + ","));
  CHECK(rejected("{\"info\": \"\xff\", " + doc(kImage, kAnnotation, kCategory).substr(1)));
  // A control character in a skipped string (found by fuzz_coco): simdjson rejects it in the
  // whole pass, so the windowed pass must too.
  CHECK(rejected("{\"info\": \"a\x01b\", " + doc(kImage, kAnnotation, kCategory).substr(1)));
  for (size_t n = 0; n + 1 < json.size(); n += 1 + n / 30) {
    CAPTURE(n);
    CHECK(rejected(json.substr(0, n)));
  }
  // A trailing comma after the last annotation is an error through load_coco too.
  check_error("trailing_comma.json", doc(kImage, std::string(kAnnotation) + ",", kCategory),
              {"annotations[1] must be an object"});
}

TEST_CASE("LabelMap::union_by_name merges two data sets into one class space, as Python computes") {
  // Two data sets sharing some names (spelled differently) and using different ids for them.
  const std::string a = write_file("merge_a.json", doc(
      R"({"id": 1, "file_name": "a1.jpg", "width": 4, "height": 3},
         {"id": 2, "file_name": "a2.jpg", "width": 4, "height": 3})",
      R"({"id": 1, "image_id": 1, "category_id": 18, "iscrowd": 0},
         {"id": 2, "image_id": 2, "category_id": 1, "iscrowd": 0},
         {"id": 3, "image_id": 2, "category_id": 10, "iscrowd": 0})",
      R"({"id": 18, "name": "dog"}, {"id": 1, "name": "person"}, {"id": 10, "name": "traffic light"})"));
  const std::string b = write_file("merge_b.json", doc(
      R"({"id": 1, "file_name": "b1.jpg", "width": 4, "height": 3},
         {"id": 5, "file_name": "b5.jpg", "width": 4, "height": 3},
         {"id": 6, "file_name": "b6.jpg", "width": 4, "height": 3})",
      R"({"id": 1, "image_id": 1, "category_id": 2, "iscrowd": 0},
         {"id": 2, "image_id": 5, "category_id": 4, "iscrowd": 0},
         {"id": 3, "image_id": 5, "category_id": 3, "iscrowd": 0})",
      R"({"id": 2, "name": "Traffic_Light"}, {"id": 3, "name": "zebra"}, {"id": 4, "name": "Person"})"));
  const auto ds_a = mobilenet::load_coco(a);
  const auto ds_b = mobilenet::load_coco(b);
  const auto map = mobilenet::LabelMap::union_by_name({ds_a, ds_b});
  std::vector<mobilenet::UnmappedCategory> lost;
  const auto samples = mobilenet::merge_samples(map, {{&ds_a, "A"}, {&ds_b, "B"}}, &lost);
  CHECK(lost.empty());

  const std::string out = (scratch() / "merge.ref.txt").string();
  REQUIRE(python({"merge", out, a, b}) == 0);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  std::string names;
  for (size_t k = 0; k < map.classes().size(); ++k) names += (k ? "|" : "") + map.classes()[k];
  CHECK(names == line);
  size_t i = 0;
  while (std::getline(in, line)) {
    REQUIRE(i < samples.size());
    std::istringstream s(line);
    int64_t id = 0;
    s >> id;
    std::vector<float> expected(static_cast<size_t>(map.num_classes()), 0.0f);
    for (size_t k; s >> k;) expected[k] = 1.0f;
    CHECK(samples[i].id == id);
    CHECK(samples[i].target == expected);
    ++i;
  }
  CHECK(i == samples.size());
  CHECK(samples[0].path == (fs::path("A") / "a1.jpg").string());
  // The first data set keeps its own class indices.
  CHECK(map.class_indices(ds_a) == std::vector<int64_t>{0, 1, 2});
}

TEST_CASE("a mapping file maps many categories to one class and reports the unmapped ones") {
  const std::string ann = write_file("animals.json", doc(
      R"({"id": 1, "file_name": "1.jpg", "width": 4, "height": 3},
         {"id": 2, "file_name": "2.jpg", "width": 4, "height": 3},
         {"id": 3, "file_name": "3.jpg", "width": 4, "height": 3})",
      R"({"id": 1, "image_id": 1, "category_id": 1},
         {"id": 2, "image_id": 2, "category_id": 2},
         {"id": 3, "image_id": 2, "category_id": 3},
         {"id": 4, "image_id": 3, "category_id": 4},
         {"id": 5, "image_id": 3, "category_id": 5})",
      R"({"id": 1, "name": "car"}, {"id": 2, "name": "truck"}, {"id": 3, "name": "Person"},
         {"id": 4, "name": "zebra"}, {"id": 5, "name": "bicycle"})"));
  const std::string mapping = write_file("mapping.json",
      R"({"classes": ["person", "vehicle"], "map": {"car": "vehicle", "Truck": "vehicle", "bicycle": null}})");
  const auto ds = mobilenet::load_coco(ann);
  const auto map = mobilenet::LabelMap::from_file(mapping);
  CHECK(map.classes() == std::vector<std::string>{"person", "vehicle"});
  // Category order is ascending id: car, truck, Person, zebra, bicycle.
  CHECK(map.class_indices(ds) == std::vector<int64_t>{1, 1, 0, -2, -1});
  const auto lost = map.unmapped(ds);
  REQUIRE(lost.size() == 1);
  CHECK(lost[0].id == 4);
  CHECK(lost[0].name == "zebra");
  CHECK(lost[0].images == 1);
  CHECK(lost[0].annotation_file == ann);
  CHECK(mobilenet::describe(lost).find("category 4 'zebra' (1 images) is unmapped") != std::string::npos);
  const auto samples = map.samples(ds, "");
  REQUIRE(samples.size() == 3);
  CHECK(samples[0].target == std::vector<float>{0, 1});
  CHECK(samples[1].target == std::vector<float>{1, 1});
  CHECK(samples[2].target == std::vector<float>{0, 0});
  // Images left without a mapped label are dropped when the data set drops empty images.
  const auto drop = mobilenet::load_coco(ann, CocoOptions().keep_empty_images(false));
  CHECK(map.samples(drop, "").size() == 2);
}

TEST_CASE("bad mapping files raise CocoError naming the file and the key") {
  auto check_map_error = [](const std::string& name, const std::string& json, const std::string& fragment) {
    const auto path = write_file(name, json);
    CAPTURE(name);
    try {
      mobilenet::LabelMap::from_file(path);
      FAIL("no CocoError for " << name);
    } catch (const CocoError& e) {
      const std::string what = e.what();
      CAPTURE(what);
      CHECK(what.find(path) == 0);
      CHECK(what.find(fragment) != std::string::npos);
    }
  };
  check_map_error("map_unknown_class.json", R"({"classes": ["a"], "map": {"b": "c"}})",
                  "map.\"b\": 'c' is not one of the classes");
  check_map_error("map_no_classes.json", R"({"map": {}})", "missing top-level field 'classes'");
  check_map_error("map_duplicate_class.json", R"({"classes": ["a", "A"]})", "classes[1]: duplicate class name");
  check_map_error("map_number_target.json", R"({"classes": ["a"], "map": {"b": 3}})", "map.\"b\"");
  check_map_error("map_malformed.json", R"({"classes": ["a")", "");
  CHECK_THROWS_AS(mobilenet::LabelMap({"a", "a"}), std::invalid_argument);
}

TEST_CASE("make_demo_data writes a COCO-format set that loads, with gaps in ids, empty images and crowds") {
  const auto dir = (scratch() / "demo").string();
  const auto opts = mobilenet::DemoDataOptions().train(120).val(30).size(64).seed(3);
  const auto splits = mobilenet::write_demo_data(dir, opts);
  REQUIRE(splits.size() == 2);
  const auto train = mobilenet::load_coco(splits[0].annotation_file);
  const auto val = mobilenet::load_coco(splits[1].annotation_file);
  CHECK(train.images.size() == 120);
  CHECK(val.images.size() == 30);
  CHECK(train.num_classes() == 6);
  // Non-contiguous category ids, classes in ascending id order.
  CHECK(train.categories.back().id - train.categories.front().id + 1 > train.num_classes());
  for (size_t k = 1; k < train.categories.size(); ++k)
    CHECK(train.categories[k - 1].id < train.categories[k].id);
  int64_t empty = 0;
  std::vector<int64_t> per_class(6, 0);
  for (const auto& l : train.labels) {
    empty += l.empty();
    for (int64_t k : l) ++per_class[static_cast<size_t>(k)];
  }
  CHECK(empty == splits[0].empty_images);
  CHECK(empty > 0);
  CHECK(train.num_crowd > 0);
  CHECK(train.num_crowd == splits[0].crowd_annotations);
  for (int64_t n : per_class) CHECK(n > 0);
  CHECK(mobilenet::load_coco(splits[0].annotation_file, CocoOptions().keep_empty_images(false))
            .images.size() == 120 - static_cast<size_t>(empty));
  // Image ids are unique across splits, so the two can be merged.
  std::set<int64_t> ids;
  for (const auto& ds : {&train, &val})
    for (const auto& im : ds->images) CHECK(ids.insert(im.id).second);
  // PIL opens every image at its annotated size and finds each object's colour in its box.
  CHECK(python({"demo", splits[0].annotation_file, splits[0].image_dir}) == 0);
  CHECK(python({"demo", splits[1].annotation_file, splits[1].image_dir}) == 0);
  // Same seed, same bytes.
  const auto again = mobilenet::write_demo_data((scratch() / "demo2").string(), opts);
  CHECK(read_file(again[0].annotation_file) == read_file(splits[0].annotation_file));
  const auto first = train.images.front().file_name;
  CHECK(read_file((fs::path(again[0].image_dir) / first).string()) ==
        read_file((fs::path(splits[0].image_dir) / first).string()));
}

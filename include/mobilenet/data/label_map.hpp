#pragma once
/// \file label_map.hpp
/// One class space for several COCO-format data sets ("train across multiple datasets").
///
///   auto coco = mobilenet::load_coco("coco/annotations/instances_train2017.json");
///   auto mine = mobilenet::load_coco("mine/annotations.json");
///   auto map = mobilenet::LabelMap::union_by_name({coco, mine});         // or
///   auto map = mobilenet::LabelMap::from_file("mapping.json");           // user-chosen
///   std::vector<mobilenet::UnmappedCategory> lost;
///   auto samples = mobilenet::merge_samples(map, {{&coco, "coco/train2017"},
///                                                 {&mine, "mine/images"}}, &lost);
///
/// Names are compared normalized: ASCII case ignored, runs of spaces, '_' and '-' equal one
/// space, ends trimmed ("Traffic_Light" == "traffic light").

#include <mobilenet/data/coco.hpp>
#include <mobilenet/data/coco_error.hpp>
#include <mobilenet/data/detail/coco_json.hpp>
#include <mobilenet/data/sample.hpp>

#include <cctype>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mobilenet {

/// A category that a LabelMap does not place in its class space, with how many images of its
/// data set carry it (those labels are lost). Example: `{"mine.json", 4, "zebra", 12}`.
struct UnmappedCategory {
  std::string annotation_file;
  int64_t id = 0;
  std::string name;
  int64_t images = 0;
};

/// Normalized category name used for matching: lower case, `_`/`-`/space runs → one space.
inline std::string normalize_label(const std::string& name) {
  std::string out;
  bool gap = false;
  for (char ch : name) {
    if (ch == ' ' || ch == '_' || ch == '-' || ch == '\t') {
      gap = !out.empty();
      continue;
    }
    if (gap) out += ' ';
    gap = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return out;
}

/// A class space (ordered class names) plus how category names map into it.
class LabelMap {
 public:
  LabelMap() = default;

  /// Classes in index order; a category maps to the class with the same normalized name.
  /// Throws std::invalid_argument for two classes with the same normalized name.
  explicit LabelMap(std::vector<std::string> classes) : classes_(std::move(classes)) {
    for (size_t k = 0; k < classes_.size(); ++k) {
      if (!index_.emplace(normalize_label(classes_[k]), static_cast<int64_t>(k)).second)
        throw std::invalid_argument("LabelMap: duplicate class name '" + classes_[k] + "'");
    }
  }

  /// The union of the data sets' category names: the first data set's classes keep their
  /// indices (so a COCO model stays a COCO model), new names follow in order of appearance.
  static LabelMap union_by_name(
      const std::vector<std::reference_wrapper<const CocoDataset>>& datasets) {
    std::vector<std::string> classes;
    std::unordered_set<std::string> seen;
    for (const CocoDataset& ds : datasets)
      for (const auto& c : ds.categories)
        if (seen.insert(normalize_label(c.name)).second) classes.push_back(c.name);
    return LabelMap(std::move(classes));
  }

  /// Reads a mapping file:
  ///   {"classes": ["person", "vehicle"],               // the class space, in index order
  ///    "map": {"car": "vehicle", "truck": "vehicle",   // category name -> class name
  ///            "bicycle": null}}                        // null: drop on purpose, not reported
  /// Category names equal to a class name map to it without a "map" entry. Throws CocoError
  /// naming the file and the offending key for malformed files or unknown target classes.
  static LabelMap from_file(const std::string& mapping_file) {
    const detail::JsonFile json(mapping_file);
    return parse(json.view(), mapping_file);
  }

  /// Like from_file for JSON in memory; `file` names it in errors.
  static LabelMap parse(simdjson::padded_string_view json, const std::string& file) {
    namespace od = simdjson::ondemand;
    detail::JsonReader r(file);
    od::parser parser;
    od::document doc;
    r.iterate(parser, json, doc);
    od::object root;
    r.check(doc.get_object().get(root), "the top level must be an object");
    LabelMap map;
    bool has_classes = false, has_map = false;
    std::vector<std::pair<std::string, std::string>> aliases;  // resolved after "classes"
    std::vector<std::string> drops;
    for (auto field_result : root) {
      od::field field;
      r.check(std::move(field_result).get(field), "top-level object");
      std::string_view key;
      r.check(field.unescaped_key().get(key), "top-level key");
      if (key == "classes") {
        if (has_classes) r.fail("duplicate top-level field 'classes'");
        has_classes = true;
        od::array array;
        r.check(field.value().get_array().get(array), "'classes' must be an array");
        size_t index = 0;
        for (auto element : array) {
          od::value v;
          const std::string where = "classes[" + std::to_string(index++) + "]";
          r.check(element.get(v), where);
          std::string name(r.string(v, where));
          if (normalize_label(name).empty()) r.fail(where + ": empty class name");
          if (!map.index_.emplace(normalize_label(name), static_cast<int64_t>(map.classes_.size())).second)
            r.fail(where + ": duplicate class name '" + name + "'");
          map.classes_.push_back(std::move(name));
        }
      } else if (key == "map") {
        if (has_map) r.fail("duplicate top-level field 'map'");
        has_map = true;
        od::object object;
        r.check(field.value().get_object().get(object), "'map' must be an object");
        std::unordered_set<std::string> keys;
        for (auto entry_result : object) {
          od::field entry;
          r.check(std::move(entry_result).get(entry), "'map'");
          std::string_view raw_name;
          r.check(entry.unescaped_key().get(raw_name), "'map' key");
          std::string name(raw_name);
          const std::string where = "map.\"" + name + "\"";
          if (!keys.insert(normalize_label(name)).second) r.fail(where + ": duplicate key");
          bool is_null = false;
          r.check(entry.value().is_null().get(is_null), where);
          if (is_null) {
            drops.push_back(name);
          } else {
            aliases.emplace_back(name, std::string(r.string(entry.value(), where)));
          }
        }
      }
    }
    r.expect_end();
    if (!has_classes) r.fail("missing top-level field 'classes'");
    for (const auto& [from, to] : aliases) {
      auto it = map.index_.find(normalize_label(to));
      if (it == map.index_.end())
        r.fail("map.\"" + from + "\": '" + to + "' is not one of the classes");
      map.alias_[normalize_label(from)] = it->second;
    }
    for (const auto& name : drops) map.alias_[normalize_label(name)] = -1;
    return map;
  }

  /// Maps `category_name` to the class named `class_name` (which must exist), overriding the
  /// match by name. Example: `map.alias("pedestrian", "person")`.
  LabelMap& alias(const std::string& category_name, const std::string& class_name) {
    auto it = index_.find(normalize_label(class_name));
    if (it == index_.end())
      throw std::invalid_argument("LabelMap::alias: unknown class '" + class_name + "'");
    alias_[normalize_label(category_name)] = it->second;
    return *this;
  }

  /// Drops `category_name` on purpose: it maps nowhere and is not reported as unmapped.
  LabelMap& drop(const std::string& category_name) {
    alias_[normalize_label(category_name)] = -1;
    return *this;
  }

  /// Class names in index order.
  const std::vector<std::string>& classes() const { return classes_; }
  int64_t num_classes() const { return static_cast<int64_t>(classes_.size()); }

  /// Class index of a category name; -1 when dropped, -2 when unmapped.
  int64_t index_of(const std::string& category_name) const {
    const std::string key = normalize_label(category_name);
    if (auto it = alias_.find(key); it != alias_.end()) return it->second;
    if (auto it = index_.find(key); it != index_.end()) return it->second;
    return -2;
  }

  /// For each class of `ds` (its category order), the class index here, or -1 / -2 as index_of.
  std::vector<int64_t> class_indices(const CocoDataset& ds) const {
    std::vector<int64_t> out;
    out.reserve(ds.categories.size());
    for (const auto& c : ds.categories) out.push_back(index_of(c.name));
    return out;
  }

  /// Categories of `ds` that map nowhere (and were not dropped on purpose).
  std::vector<UnmappedCategory> unmapped(const CocoDataset& ds) const {
    const auto indices = class_indices(ds);
    std::vector<int64_t> images(indices.size(), 0);
    for (const auto& l : ds.labels)
      for (int64_t k : l) ++images[static_cast<size_t>(k)];
    std::vector<UnmappedCategory> out;
    for (size_t k = 0; k < indices.size(); ++k)
      if (indices[k] == -2)
        out.push_back({ds.annotation_file, ds.categories[k].id, ds.categories[k].name, images[k]});
    return out;
  }

  /// Samples of `ds` with targets in this class space. Images left without any label are
  /// dropped when `ds` was loaded with keep_empty_images(false), else kept all-negative.
  std::vector<Sample> samples(const CocoDataset& ds, const std::string& image_dir) const {
    const auto indices = class_indices(ds);
    std::vector<Sample> out;
    out.reserve(ds.images.size());
    for (size_t i = 0; i < ds.images.size(); ++i) {
      std::vector<float> target(classes_.size(), 0.0f);
      bool any = false;
      for (int64_t k : ds.labels[i]) {
        const int64_t c = indices[static_cast<size_t>(k)];
        if (c >= 0) target[static_cast<size_t>(c)] = 1.0f, any = true;
      }
      if (!any && !ds.options.keep_empty_images()) continue;
      out.push_back(Sample{image_dir.empty() ? ds.images[i].file_name
                                             : (std::filesystem::path(image_dir) /
                                                ds.images[i].file_name).string(),
                           std::move(target), ds.images[i].id});
    }
    return out;
  }

 private:
  std::vector<std::string> classes_;
  std::unordered_map<std::string, int64_t> index_;  // normalized class name -> index
  std::unordered_map<std::string, int64_t> alias_;  // normalized category name -> index or -1
};

/// Samples of several data sets (each with its image folder) in one class space; the
/// categories that map nowhere are appended to `unmapped` when given. Image ids stay those
/// of each file, so they may repeat across data sets.
inline std::vector<Sample> merge_samples(
    const LabelMap& map, const std::vector<std::pair<const CocoDataset*, std::string>>& sources,
    std::vector<UnmappedCategory>* unmapped = nullptr) {
  std::vector<Sample> out;
  for (const auto& [ds, image_dir] : sources) {
    auto part = map.samples(*ds, image_dir);
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    if (unmapped) {
      auto lost = map.unmapped(*ds);
      unmapped->insert(unmapped->end(), lost.begin(), lost.end());
    }
  }
  return out;
}

/// One line per unmapped category, e.g. "mine.json: category 4 'zebra' (12 images) is unmapped".
inline std::string describe(const std::vector<UnmappedCategory>& unmapped) {
  std::ostringstream out;
  for (const auto& u : unmapped)
    out << u.annotation_file << ": category " << u.id << " '" << u.name << "' (" << u.images
        << " images) is unmapped\n";
  return out.str();
}

}  // namespace mobilenet

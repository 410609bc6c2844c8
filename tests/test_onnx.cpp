// ONNX export: ONNX's checkers, onnxruntime against our eval forward and the Predictor,
// torchvision's own torch.onnx export of the same weights, metadata, and bad input.
// The references run in tests/python/onnx_reference.py with MOBILENET_PYTHON; where it lacks
// onnxruntime or torch, those checks are reported as skipped (doctest MESSAGE), never passed.
#include <doctest/doctest.h>
#include <mobilenet/data.hpp>
#include <mobilenet/data/transforms.hpp>
#include <mobilenet/export/onnx.hpp>
#include <mobilenet/inference/predictor.hpp>
#include <mobilenet/mobilenet.hpp>

#pragma push_macro("MAP_TYPE")  // as in export/onnx.hpp: <sys/mman.h>'s macro vs ONNX's enum
#undef MAP_TYPE
#include <simdjson.h>
#pragma pop_macro("MAP_TYPE")

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "support.hpp"

using namespace mobilenet;
using mobilenet::test::relative_error;
using mobilenet::test::run_python;
using mobilenet::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr int kSkipped = 77;  // onnx_reference.py: a package is missing
// The issue's bar for onnxruntime against our forward.
constexpr double kTolerance = 1e-5;

// Non-trivial BatchNorm statistics and a classifier that matters, so folding and the head
// are exercised (fresh statistics make BN an identity).
void randomize(Classifier& model, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (const auto& m : model.module().modules()) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.5, 1.5);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    } else if (auto* linear = m->as<torch::nn::LinearImpl>()) {
      linear->weight.normal_(0, 0.1);
      linear->bias.uniform_(-0.1, 0.1);
    }
  }
  model.module().eval();
}

void write_raw(const std::string& path, const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), std::streamsize(c.nbytes()));
  REQUIRE(out.good());
}

torch::Tensor read_raw(const std::string& path, std::vector<int64_t> shape) {
  torch::Tensor t = torch::empty(shape, torch::kFloat);
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing " << path);
  in.read(static_cast<char*>(t.data_ptr()), std::streamsize(t.nbytes()));
  REQUIRE(in.gcount() == std::streamsize(t.nbytes()));
  return t;
}

std::string shape_text(const torch::Tensor& t) {
  std::string s;
  for (int64_t d : t.sizes()) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

// What a file holds, as the onnx Python package parses it (onnx_reference.py describe):
// the test reads our files through ONNX's own reader, not through our writer's classes.
struct OnnxFile {
  int64_t ir_version = 0, opset = 0, max_opset = 0;
  std::map<std::string, int64_t> ops, initializer_types;
  std::vector<std::pair<std::string, std::vector<std::string>>> inputs, outputs;
  std::map<std::string, std::string> metadata;
};

OnnxFile describe(const std::string& path) {
  const std::string json = path + ".describe.json";
  REQUIRE_MESSAGE(run_python("onnx_reference.py", {"describe", path, json}) == 0,
                  "onnx could not read " << path);
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(json);
  OnnxFile f;
  f.ir_version = int64_t(doc["ir_version"]);
  f.opset = int64_t(doc["opset"]);
  f.max_opset = int64_t(doc["max_opset"]);
  for (auto field : simdjson::dom::object(doc["ops"])) f.ops[std::string(field.key)] = int64_t(field.value);
  for (auto field : simdjson::dom::object(doc["initializer_types"])) {
    f.initializer_types[std::string(field.key)] = int64_t(field.value);
  }
  for (auto field : simdjson::dom::object(doc["metadata"])) {
    f.metadata[std::string(field.key)] = std::string(std::string_view(field.value));
  }
  for (auto [key, list] : {std::pair{"inputs", &f.inputs}, std::pair{"outputs", &f.outputs}}) {
    for (auto v : simdjson::dom::array(doc[key])) {
      std::vector<std::string> dims;
      for (auto d : simdjson::dom::array(v["dims"])) dims.emplace_back(std::string_view(d));
      list->emplace_back(std::string(std::string_view(v["name"])), dims);
    }
  }
  return f;
}

// ONNX's Python checker (full_check) and strict shape inference (python3-onnx suffices).
void python_check(const std::string& model) {
  CHECK_MESSAGE(run_python("onnx_reference.py", {"check", model}) == 0,
                "onnx.checker / shape inference refused " << model);
}

// onnxruntime's outputs on `inputs`; empty when onnxruntime is absent (reported once).
std::vector<std::map<std::string, torch::Tensor>> onnxruntime(
    const TempDir& dir, const std::string& model, const std::vector<torch::Tensor>& inputs,
    int64_t classes, const std::vector<std::string>& outputs = {"logits"}) {
  std::vector<std::string> args{"run", model};
  std::vector<std::string> files;
  for (size_t i = 0; i < inputs.size(); ++i) {
    files.push_back(dir / ("in" + std::to_string(i) + "-" + fs::path(model).stem().string() + ".bin"));
    write_raw(files.back(), inputs[i]);
    args.push_back(files.back() + ":" + shape_text(inputs[i]));
  }
  const int rc = run_python("onnx_reference.py", args);
  if (rc == kSkipped) {
    MESSAGE("SKIPPED onnxruntime comparison (no onnxruntime in " << MOBILENET_PYTHON << ")");
    return {};
  }
  REQUIRE(rc == 0);
  std::vector<std::map<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::map<std::string, torch::Tensor> named;
    for (const auto& name : outputs) {
      named[name] = read_raw(files[i] + "." + name + ".bin", {inputs[i].size(0), classes});
    }
    out.push_back(std::move(named));
  }
  return out;
}

torch::Tensor eval_forward(Classifier& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  model.module().eval();
  return model.forward(x);
}

}  // namespace

TEST_CASE("export_onnx writes a file ONNX's checker and shape inference accept, without BatchNorm") {
  TempDir dir("onnx-check");
  const auto spec = ModelSpec().num_classes(5).image_size(64).output_stride(16).class_names(
      {"cat", "dog \"big\"", "car", "tree", "sky"});
  Classifier model = make_model(spec);
  randomize(model, 1);
  const std::string path = dir / "m.onnx";
  export_onnx(model, path, ExportOptions().spec(spec).probabilities(true));
  // onnx.checker (full_check) and strict shape inference: every node's output typed.
  python_check(path);
  const OnnxFile f = describe(path);
  CHECK(f.opset == 17);
  CHECK(f.ir_version == 8);
  // torchvision's mobilenet_v2: 52 convolutions, 35 ReLU6 (Clip), 10 residual additions.
  CHECK(f.ops.at("Conv") == 52);
  CHECK(f.ops.at("Clip") == 35);
  CHECK(f.ops.at("Add") == 10);
  CHECK(f.ops.at("Gemm") == 1);
  CHECK(f.ops.at("Sigmoid") == 1);
  CHECK(f.ops.count("BatchNormalization") == 0);
  CHECK(f.ops.count("Dropout") == 0);
  REQUIRE(f.inputs.size() == 1);
  CHECK(f.inputs[0].first == "images");
  CHECK(f.inputs[0].second == std::vector<std::string>{"batch", "3", "64", "64"});
  REQUIRE(f.outputs.size() == 2);
  CHECK(f.outputs[0].first == "logits");
  CHECK(f.outputs[0].second == std::vector<std::string>{"batch", "5"});
  CHECK(f.outputs[1].first == "probabilities");
  CHECK(f.metadata.at("class_names") == R"(["cat", "dog \"big\"", "car", "tree", "sky"])");
}

TEST_CASE("export_onnx metadata carries class names, thresholds and the eval transform") {
  TempDir dir("onnx-meta");
  const auto spec = ModelSpec().arch("mobilenet_v1").num_classes(3).image_size(96).output_stride(32)
                        .eval_resize("center").class_names({"a", "b\\c", "d"});
  Classifier model = make_model(spec);
  const std::vector<float> thresholds = {0.25f, 0.5f, 0.875f};
  export_onnx(model, dir / "m.onnx", ExportOptions().spec(spec).thresholds(thresholds));
  auto meta = describe(dir / "m.onnx").metadata;
  CHECK(meta["model_name"] == "mobilenet_v1");
  CHECK(meta["model"] == spec.describe());
  CHECK(meta["library"] == "mobilenet");
  CHECK(meta["library_version"] == version_string());
  CHECK(meta["num_classes"] == "3");
  CHECK(meta["class_names"] == R"(["a", "b\\c", "d"])");
  CHECK(meta["thresholds"] == "[0.25, 0.5, 0.875]");
  CHECK(meta["resize_mode"] == "center");
  CHECK(meta["image_size"] == "96");
  CHECK(meta["resize"].find("shorter side resized to 109") != std::string::npos);  // int(96*256/224)
  CHECK(meta["channel_order"] == "RGB");
  CHECK(meta["layout"] == "NCHW");
  CHECK(meta["input_size"] == "[96, 96]");
  // The numbers the data component normalizes with (independently written there).
  std::ostringstream mean, stdev;
  mean.precision(9), stdev.precision(9);
  mean << "[" << kImageNetMean[0] << ", " << kImageNetMean[1] << ", " << kImageNetMean[2] << "]";
  stdev << "[" << kImageNetStd[0] << ", " << kImageNetStd[1] << ", " << kImageNetStd[2] << "]";
  CHECK(meta["mean"] == mean.str());
  CHECK(meta["std"] == stdev.str());
  CHECK(meta["normalize"] == "true");

  export_onnx(model, dir / "plain.onnx", ExportOptions().spec(ModelSpec(spec).normalize(false)));
  meta = describe(dir / "plain.onnx").metadata;
  CHECK(meta["mean"] == "[0, 0, 0]");
  CHECK(meta["std"] == "[1, 1, 1]");
  CHECK(meta["thresholds"] == "[0.5, 0.5, 0.5]");  // none given: 0.5 each
  // Without a spec the class names are the indices.
  export_onnx(model, dir / "bare.onnx");
  meta = describe(dir / "bare.onnx").metadata;
  CHECK(meta["class_names"] == R"(["0", "1", "2"])");
  CHECK(meta["image_size"] == "224");  // the input size when no spec says otherwise
  CHECK(meta["input_size"] == "[224, 224]");
}

TEST_CASE("onnxruntime matches our eval forward within 1e-5: V2 OS32/16/8, widths 0.5 and 1, V1, batch 1 and 7") {
  TempDir dir("onnx-ort");
  struct Case {
    std::string arch;
    double width;
    int64_t output_stride, size;
  };
  const std::vector<Case> cases = {
      {"mobilenet_v2", 1.0, 32, 64}, {"mobilenet_v2", 0.5, 16, 80}, {"mobilenet_v2", 1.0, 8, 64},
      {"mobilenet_v2", 0.5, 32, 96}, {"mobilenet_v1", 1.0, 32, 64}, {"mobilenet_v1", 0.5, 16, 72},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    CAPTURE(c.arch);
    CAPTURE(c.width);
    CAPTURE(c.output_stride);
    const auto spec = ModelSpec().arch(c.arch).num_classes(7).width_mult(c.width)
                          .output_stride(c.output_stride).image_size(c.size);
    Classifier model = make_model(spec);
    randomize(model, 10 + i);
    const std::string path = dir / ("m" + std::to_string(i) + ".onnx");
    export_onnx(model, path, ExportOptions().spec(spec).probabilities(true));
    python_check(path);
    torch::manual_seed(100 + i);
    const std::vector<torch::Tensor> inputs = {torch::randn({1, 3, c.size, c.size}),
                                               torch::randn({7, 3, c.size, c.size})};
    auto ort = onnxruntime(dir, path, inputs, 7, {"logits", "probabilities"});
    if (ort.empty()) break;
    const auto prepared = prepare_for_inference(
        model.features(), model.classifier(), InferenceOptions().backend(InferenceNode::Backend::kATen)
                                                  .memory_format(InferenceMemoryFormat::kContiguous));
    for (size_t b = 0; b < inputs.size(); ++b) {
      CAPTURE(inputs[b].size(0));
      const torch::Tensor ours = eval_forward(model, inputs[b]);
      CHECK(relative_error(ort[b]["logits"], ours) <= kTolerance);
      CHECK(relative_error(ort[b]["logits"], prepared(inputs[b])) <= kTolerance);
      CHECK(relative_error(ort[b]["probabilities"], torch::sigmoid(ours)) <= kTolerance);
    }
  }
}

TEST_CASE("an exported checkpoint agrees with the Predictor on the same preprocessed images") {
  TempDir dir("onnx-predictor");
  const auto spec = ModelSpec().num_classes(4).image_size(64).output_stride(16)
                        .class_names({"w", "x", "y", "z"});
  Classifier model = make_model(spec);
  randomize(model, 3);
  TrainingState state;
  state.thresholds = {0.1f, 0.3f, 0.6f, 0.9f};
  save_checkpoint(dir / "best.pt", model.module(), spec, state);
  export_onnx_from_checkpoint(dir / "best.pt", dir / "m.onnx", ExportOptions().probabilities(true));
  auto meta = describe(dir / "m.onnx").metadata;
  CHECK(meta["thresholds"] == "[0.100000001, 0.300000012, 0.600000024, 0.899999976]");
  CHECK(meta["class_names"] == R"(["w", "x", "y", "z"])");
  CHECK(meta["model"] == spec.describe());
  torch::manual_seed(5);
  const torch::Tensor images = torch::randn({7, 3, 64, 64});
  auto ort = onnxruntime(dir, dir / "m.onnx", {images}, 4, {"logits", "probabilities"});
  if (ort.empty()) return;
  Predictor predictor(dir / "best.pt");
  const auto predictions = predictor.predict_batch(images);
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto& p = predictions[size_t(i)].probabilities;
    const torch::Tensor ours = torch::tensor(p);
    CHECK(relative_error(ort[0]["probabilities"][i], ours) <= kTolerance);
  }
}

TEST_CASE("torchvision's own torch.onnx export of the same weights agrees through onnxruntime") {
  TempDir dir("onnx-torchvision");
  // Plain variables, not a structured binding: CAPTURE takes a reference in a lambda, which
  // C++17 forbids for bindings (clang rejects it, g++ accepts it).
  for (const auto& config : {std::pair<double, int64_t>{1.0, 32}, {0.5, 16}, {1.0, 8}}) {
    const double width = config.first;
    const int64_t os = config.second;
    CAPTURE(width);
    CAPTURE(os);
    const auto spec = ModelSpec().num_classes(6).width_mult(width).output_stride(os).image_size(64);
    Classifier model = make_model(spec);
    randomize(model, uint64_t(os));
    const std::string tag = std::to_string(os);
    save_weights(model.module(), dir / ("w" + tag + ".pt"));
    const std::string theirs = dir / ("tv" + tag + ".onnx"), ours = dir / ("ours" + tag + ".onnx");
    const int rc = run_python("onnx_reference.py", {"torchvision", theirs, dir / ("w" + tag + ".pt"),
                                                        "6", tag, std::to_string(width), "64"});
    if (rc == kSkipped) {
      MESSAGE("SKIPPED torch.onnx cross-check (no torch/torchvision in " << MOBILENET_PYTHON << ")");
      return;
    }
    REQUIRE(rc == 0);
    python_check(theirs);
    export_onnx(model, ours, ExportOptions().spec(spec));
    torch::manual_seed(7);
    const std::vector<torch::Tensor> inputs = {torch::randn({1, 3, 64, 64}), torch::randn({7, 3, 64, 64})};
    auto a = onnxruntime(dir, theirs, inputs, 6);
    if (a.empty()) return;
    auto b = onnxruntime(dir, ours, inputs, 6);
    for (size_t i = 0; i < inputs.size(); ++i) {
      CHECK(relative_error(b[i]["logits"], a[i]["logits"]) <= kTolerance);
      CHECK(relative_error(eval_forward(model, inputs[i]), a[i]["logits"]) <= kTolerance);
    }
  }
}

TEST_CASE("export_onnx options: dynamic height and width, float16 weights, another opset") {
  TempDir dir("onnx-options");
  const auto spec = ModelSpec().num_classes(3).image_size(64).output_stride(32);
  Classifier model = make_model(spec);
  randomize(model, 4);
  export_onnx(model, dir / "dyn.onnx", ExportOptions().spec(spec).dynamic_size(true));
  export_onnx(model, dir / "f32.onnx", ExportOptions().spec(spec));
  export_onnx(model, dir / "f16.onnx", ExportOptions().spec(spec).float16_weights(true));
  export_onnx(model, dir / "op13.onnx", ExportOptions().spec(spec).opset(13));
  CHECK(describe(dir / "dyn.onnx").inputs.at(0).second == std::vector<std::string>{"batch", "3", "height", "width"});
  const OnnxFile f16 = describe(dir / "f16.onnx");
  CHECK(f16.initializer_types.at("FLOAT16") == 2 * 53);  // weight and bias of 52 convolutions and the Linear
  CHECK(f16.initializer_types.at("FLOAT") == 2);          // Clip's bounds stay float32
  CHECK(f16.ops.at("Cast") == 2 * 53);
  const double ratio = double(fs::file_size(dir / "f16.onnx")) / double(fs::file_size(dir / "f32.onnx"));
  CHECK(ratio == doctest::Approx(0.5).epsilon(0.02));
  CHECK(describe(dir / "op13.onnx").ir_version == 7);
  std::vector<std::string> checked = {"dyn.onnx", "f16.onnx", "op13.onnx"};
  // The newest opset we stamp, where the installed onnx knows it (Debian's 1.12 stops at 17).
  if (describe(dir / "f32.onnx").max_opset >= mobilenet::detail::kOnnxMaxOpset) {
    export_onnx(model, dir / "op21.onnx", ExportOptions().spec(spec).opset(mobilenet::detail::kOnnxMaxOpset));
    CHECK(describe(dir / "op21.onnx").ir_version == 10);
    checked.push_back("op21.onnx");
  } else {
    MESSAGE("SKIPPED opset " << mobilenet::detail::kOnnxMaxOpset << " check: the onnx in " << MOBILENET_PYTHON
                             << " knows opsets up to " << describe(dir / "f32.onnx").max_opset);
  }
  for (const auto& name : checked) python_check(dir / name);

  torch::manual_seed(8);
  const torch::Tensor x96 = torch::randn({2, 3, 96, 80}), x64 = torch::randn({7, 3, 64, 64});
  auto d = onnxruntime(dir, dir / "dyn.onnx", {x96, x64}, 3);
  if (d.empty()) return;
  CHECK(relative_error(d[0]["logits"], eval_forward(model, x96)) <= kTolerance);
  CHECK(relative_error(d[1]["logits"], eval_forward(model, x64)) <= kTolerance);
  auto o = onnxruntime(dir, dir / "op13.onnx", {x64}, 3);
  CHECK(relative_error(o[0]["logits"], eval_forward(model, x64)) <= kTolerance);
  if (fs::exists(dir / "op21.onnx")) {
    auto o21 = onnxruntime(dir, dir / "op21.onnx", {x64}, 3);
    CHECK(relative_error(o21[0]["logits"], eval_forward(model, x64)) <= kTolerance);
  }
  // float16 weights: each folded weight rounded to 11 significant bits, arithmetic in float32.
  auto h = onnxruntime(dir, dir / "f16.onnx", {x64}, 3);
  auto full = onnxruntime(dir, dir / "f32.onnx", {x64}, 3);
  CHECK(relative_error(h[0]["logits"], eval_forward(model, x64)) <= 2e-2);
  CHECK_FALSE(torch::equal(h[0]["logits"], full[0]["logits"]));  // it did round
}

TEST_CASE("export_onnx names the path of a module it cannot export and leaves no file") {
  TempDir dir("onnx-bad");
  const std::string path = dir / "m.onnx";
  MobileNetV2 v2(MobileNetV2Options().num_classes(3));
  v2->features->push_back(torch::nn::SiLU());
  CHECK_THROWS_WITH(export_onnx(v2, path),
                    doctest::Contains("export_onnx: unsupported module torch::nn::SiLU"));
  CHECK_THROWS_WITH(export_onnx(v2, path), doctest::Contains("at 'features.19'"));
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".tmp"));
  // Deeper: the activation inside the first block's ConvBnAct.
  MobileNetV2 nested(MobileNetV2Options().num_classes(3));
  nested->features->ptr(0)->replace_module("2", torch::nn::SiLU());
  {
    std::ofstream(path) << "previous";
  }
  CHECK_THROWS_WITH(export_onnx(nested, path),
                    doctest::Contains("at 'features.0.2'"));
  std::ifstream in(path);
  std::string kept;
  in >> kept;
  CHECK(kept == "previous");  // an existing file stays as it was
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

TEST_CASE("export_onnx reports the system's reason for a path it cannot write") {
  TempDir dir("onnx-unwritable");
  Classifier model = make_model(ModelSpec().num_classes(2).image_size(32));
  const std::string missing = dir / "no-such-folder/m.onnx";
  CHECK_THROWS_WITH(export_onnx(model, missing), doctest::Contains(std::strerror(ENOENT)));
  CHECK_FALSE(fs::exists(missing));
  // A folder in the way: the rename fails, and the temporary is removed.
  fs::create_directory(dir / "taken");
  CHECK_THROWS_WITH(export_onnx(model, dir / "taken"), doctest::Contains(std::strerror(EISDIR)));
  CHECK_FALSE(fs::exists(dir / "taken.tmp"));
  CHECK(fs::is_directory(dir / "taken"));
}

TEST_CASE("export_onnx refuses options that contradict the model, naming them") {
  TempDir dir("onnx-options-bad");
  Classifier model = make_model(ModelSpec().num_classes(3).image_size(32));
  CHECK_THROWS_WITH(export_onnx(model, dir / "a.onnx", ExportOptions().opset(10)),
                    doctest::Contains("opset must be in [11, "));
  CHECK_THROWS_WITH(export_onnx(model, dir / "a.onnx", ExportOptions().spec(ModelSpec().num_classes(4))),
                    doctest::Contains("spec has 4 classes, the model 3"));
  CHECK_THROWS_WITH(export_onnx(model, dir / "a.onnx",
                                ExportOptions().spec(ModelSpec().arch("mobilenet_v1").num_classes(3))),
                    doctest::Contains("spec is a mobilenet_v1, the model a mobilenet_v2"));
  CHECK_THROWS_WITH(export_onnx(model, dir / "a.onnx", ExportOptions().thresholds({0.5f})),
                    doctest::Contains("1 thresholds for 3 classes"));
  CHECK_THROWS_WITH(export_onnx(model, dir / "a.onnx", ExportOptions().thresholds({0.5f, 2.f, 0.1f})),
                    doctest::Contains("thresholds must be in [0, 1], got 2"));
  CHECK_FALSE(fs::exists(dir / "a.onnx"));
}

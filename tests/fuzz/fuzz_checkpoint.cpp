// libFuzzer target for checkpoint loading: any byte string read as a checkpoint file must load
// or raise c10::Error, never crash, hang or read out of bounds. Mutations of a valid checkpoint
// are what a corrupt or truncated file gives; the checksum must refuse them cleanly.
//
// MOBILENET_FUZZ_RESEAL=1 also tries each input with its checksum recomputed, so that mutated
// content reaches LibTorch's readers: that is a crafted file, not a corrupt one, and LibTorch
// 1.13 is not safe against those (a SEGV in its TorchScript type parser, ScriptTypeParser::
// parseClassConstant, within seconds). Checkpoints, like torch.load's files, must be trusted.
// LLVMFuzzerInitialize writes a valid checkpoint of a tiny model, seed.pt, into the corpus
// folder (the first argument that is a folder), so the seed always has the current format.
//   clang++ -fsanitize=fuzzer,address ... fuzz_checkpoint.cpp && ./fuzz_checkpoint corpus/
#include <mobilenet/train/checkpoint.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

// A model small enough that its checkpoint (~10 KB) mutates quickly.
torch::nn::Linear tiny_model() { return torch::nn::Linear(3, 2); }

mobilenet::ModelSpec tiny_spec() {
  return mobilenet::ModelSpec().num_classes(2).image_size(8).class_names({"a", "b"});
}

const std::string& scratch_file() {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("fuzz_checkpoint-" + std::to_string(getpid()) + ".pt"))
                                      .string();
  return path;
}

void load(const std::string& bytes) {
  std::ofstream(scratch_file(), std::ios::binary | std::ios::trunc) << bytes;
  try {
    const mobilenet::ModelSpec spec = mobilenet::read_model_spec(scratch_file());
    auto model = tiny_model();
    torch::optim::Adam opt(model->parameters());
    (void)mobilenet::load_checkpoint(scratch_file(), *model, spec, &opt);
  } catch (const c10::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = (*argv)[i];
    if (arg.empty() || arg[0] == '-' || !std::filesystem::is_directory(arg)) continue;
    auto model = tiny_model();
    torch::optim::Adam opt(model->parameters());
    model->forward(torch::ones({1, 3})).sum().backward();
    opt.step();  // so that the optimizer state has tensors
    mobilenet::TrainingState state;
    state.epoch = 1;
    state.thresholds = {0.3f, 0.7f};
    mobilenet::save_checkpoint(arg + "/seed.pt", *model, tiny_spec(), state, &opt);
    break;
  }
  scratch_file();  // constructed before the handler is registered, so it outlives it
  std::atexit([] { std::remove(scratch_file().c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  load(bytes);
  using mobilenet::detail::kChecksumPrefix;
  using mobilenet::detail::kChecksumRecord;
  static const bool reseal = std::getenv("MOBILENET_FUZZ_RESEAL") != nullptr;
  if (reseal && size >= kChecksumRecord &&
      bytes.compare(size - kChecksumRecord, kChecksumPrefix.size(), kChecksumPrefix) == 0) {
    char hex[9];
    std::snprintf(hex, sizeof(hex), "%08x",
                  unsigned(mobilenet::detail::crc32_of(
                      std::string_view(bytes).substr(0, size - kChecksumRecord))));
    bytes.replace(size - 8, 8, hex);
    load(bytes);
  }
  return 0;
}

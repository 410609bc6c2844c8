#include <mobilenet/mobilenet.hpp>
#include <mobilenet/version.hpp>

#include <iostream>

static_assert(PACKAGE_VERSION_MAJOR == MOBILENET_VERSION_MAJOR &&
                  PACKAGE_VERSION_MINOR == MOBILENET_VERSION_MINOR &&
                  PACKAGE_VERSION_PATCH == MOBILENET_VERSION_PATCH,
              "find_package(mobilenet) reports another version than mobilenet/version.hpp");

int main() {
  std::cout << "mobilenet " << mobilenet::version_string() << "\n";
  // The seed model: MobileNetV2, 80 classes, output stride 16, input 3x256x256.
  mobilenet::MobileNetV2 model(mobilenet::seed_model_options());
  mobilenet::init_model(*model, mobilenet::InitPolicy::torchvision());
  model->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model(torch::rand({1, 3, 256, 256}));
  std::cout << "logits " << logits.sizes() << ", "
            << mobilenet::summarize(*model, {3, 256, 256}).total_params << " parameters\n";
  return logits.size(1) == 80 ? 0 : 1;
}

#include <mobilenet/mobilenet.hpp>

#include <iostream>

int main() {
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

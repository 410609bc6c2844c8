// Tags images with a trained checkpoint: tag_images best.pt a.jpg b.jpg ...
#include <mobilenet/inference.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 3) return std::cerr << "usage: tag_images CHECKPOINT IMAGE...\n", 2;
  mobilenet::Predictor predictor(argv[1]);  // model, thresholds, eval transform: all from the checkpoint
  for (int i = 2; i < argc; ++i) {
    std::cout << argv[i] << ":";
    for (const auto& label : predictor.predict(argv[i]).labels)
      std::cout << " " << label.name << " " << label.probability;
    std::cout << "\n";
  }
}

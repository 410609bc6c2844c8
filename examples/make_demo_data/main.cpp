// Writes a small multi-label data set in COCO format: coloured shapes on noisy backgrounds.
//
//   make_demo_data --out demo --train 1000 --val 200 --size 96 --seed 0
//
// writes demo/annotations/instances_{train,val}.json and demo/{train,val}/*.jpg. Six classes
// (category ids 3, 7, 12, 25, 44, 90), 1-3 objects per image, ~12% images without objects,
// some crowd annotations. A small CNN learns them in a few minutes of CPU training at 64-96 px.
#include <mobilenet/demo.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Write a small multi-label COCO-format demo data set (shapes on noise)"};
  std::string out = "demo";
  mobilenet::DemoDataOptions options;
  int64_t train = options.train(), val = options.val(), size = options.size();
  uint64_t seed = options.seed();
  int quality = options.quality();
  double border = options.border_fraction();
  app.add_option("--out", out, "Output directory")->capture_default_str();
  app.add_option("--train", train, "Number of training images")->capture_default_str();
  app.add_option("--val", val, "Number of validation images")->capture_default_str();
  app.add_option("--size", size, "Shorter image side in pixels")->capture_default_str();
  app.add_option("--seed", seed, "Random seed (same seed, same files)")->capture_default_str();
  app.add_option("--quality", quality, "JPEG quality 1..100")->check(CLI::Range(1, 100))->capture_default_str();
  app.add_option("--border-fraction", border, "fraction of objects cut by an image border")
      ->check(CLI::Range(0.0, 1.0))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const auto start = std::chrono::steady_clock::now();
    const auto splits = mobilenet::write_demo_data(
        out, options.train(train).val(val).size(size).seed(seed).quality(quality).border_fraction(border));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const auto& s : splits) {
      std::cout << s.annotation_file << ": " << s.images << " images in " << s.image_dir << " ("
                << s.empty_images << " without objects), " << s.annotations << " annotations ("
                << s.crowd_annotations << " crowd)\n";
    }
    std::cout << "classes:";
    for (const auto& c : mobilenet::demo_classes()) std::cout << ' ' << c.name << '=' << c.id;
    std::cout << "\nwritten in " << seconds << " s\n";
  } catch (const std::exception& e) {
    std::cerr << "make_demo_data: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

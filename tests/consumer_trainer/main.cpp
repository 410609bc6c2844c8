// Trains MobileNetV2 for one epoch on generated COCO-format data through the installed package.
#include <mobilenet/data.hpp>
#include <mobilenet/demo.hpp>
#include <mobilenet/mobilenet.hpp>
#include <mobilenet/train/trainer.hpp>

#include <filesystem>
#include <iostream>

int main() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::current_path() / "demo";  // tag_images reads the run afterwards
  fs::remove_all(dir);
  mobilenet::write_demo_data(dir.string(), mobilenet::DemoDataOptions().train(64).val(32).size(48));

  auto train_set = mobilenet::load_coco((dir / "annotations/instances_train.json").string());
  auto val_set = mobilenet::load_coco((dir / "annotations/instances_val.json").string());
  const auto spec = mobilenet::ModelSpec()
                        .num_classes(train_set.num_classes())
                        .width_mult(0.5)
                        .image_size(48)
                        .class_names(train_set.class_names());
  mobilenet::Transform train_tf, val_tf;
  train_tf.resize(48, 48).horizontal_flip(0.5).normalize();
  val_tf.resize(48, 48).normalize();
  mobilenet::DataLoader train(train_set.samples((dir / "train").string()), train_tf,
                              mobilenet::LoaderOptions(16).drop_last(true));
  mobilenet::DataLoader val(val_set.samples((dir / "val").string()), val_tf,
                            mobilenet::LoaderOptions(16).shuffle(false));

  mobilenet::Classifier model = mobilenet::make_model(spec);
  auto optimizer = mobilenet::make_optimizer(model.module(), mobilenet::OptimizerOptions("adamw", 1e-3));
  mobilenet::Trainer trainer(model, spec, std::move(optimizer),
                             [](const torch::Tensor& x, const torch::Tensor& y) {
                               return mobilenet::bce_with_logits_loss(x, y);
                             },
                             mobilenet::TrainerOptions((dir / "run").string()).epochs(1));
  const mobilenet::FitResult result = trainer.fit(train, val);

  std::cout << "trained " << result.steps_run << " steps, val mAP " << result.last->ap.mean << "\n";
  const bool ok = result.status == mobilenet::FitStatus::completed && result.steps_run == 4 &&
                  fs::exists(dir / "run/last.pt") && std::isfinite(result.last->ap.mean);
  return ok ? 0 : 1;
}

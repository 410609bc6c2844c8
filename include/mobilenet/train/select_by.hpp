#pragma once
/// \file train/select_by.hpp
/// Which score picks best.pt: mAP (the multi-label literature's headline), tuned macro F1,
/// or the lowest validation loss.

#include <mobilenet/train/evaluate.hpp>

#include <torch/torch.h>

#include <string>

namespace mobilenet {

/// The score that picks best.pt. Example: `TrainerOptions("runs/x").select_by(SelectBy::f1)`.
enum class SelectBy {
  map,   ///< mean average precision over classes
  f1,    ///< macro F1 at the thresholds tuned on the validation set
  loss,  ///< lowest validation loss
};

/// "map", "f1" or "loss".
inline const char* to_string(SelectBy s) {
  switch (s) {
    case SelectBy::map: return "map";
    case SelectBy::f1: return "f1";
    case SelectBy::loss: return "loss";
  }
  return "?";
}

/// The SelectBy named `name` ("map", "f1", "loss"); throws naming the accepted values.
inline SelectBy parse_select_by(const std::string& name) {
  for (SelectBy s : {SelectBy::map, SelectBy::f1, SelectBy::loss}) {
    if (name == to_string(s)) return s;
  }
  TORCH_CHECK(false, "select_by must be map, f1 or loss, got '", name, "'");
}

/// The score of `e` by `s`; higher is better (the loss is negated).
inline double selection_score(SelectBy s, const Evaluation& e) {
  switch (s) {
    case SelectBy::map: return e.ap.mean;
    case SelectBy::f1: return e.tuned.macro_f1;
    case SelectBy::loss: return -e.loss;
  }
  return -e.loss;
}

}  // namespace mobilenet

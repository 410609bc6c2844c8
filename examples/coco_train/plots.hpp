#pragma once
// PNG plots of a training run through gnuplot, when it is installed.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace coco_train {

inline bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

/// Writes `dir`/plots.gp and runs it: loss.png, f1.png, map.png from metrics.csv, and
/// per_class_ap.png from per_class.csv. Returns false (and leaves the script) without gnuplot.
inline bool render_plots(const std::string& dir) {
  const std::string script = dir + "/plots.gp";
  std::ofstream gp(script);
  gp << "set datafile separator ','\n"
        "set terminal pngcairo size 900,500 noenhanced\n"
        "set key autotitle columnhead outside right\nset grid\nset xlabel 'epoch'\nset xtics 1\n"
        "set output '" << dir << "/loss.png'\nset title 'loss'\n"
        "plot '" << dir << "/metrics.csv' using 'epoch':'train_loss' with linespoints title 'train', "
        "'' using 'epoch':'val_loss' with linespoints title 'val'\n"
        "set output '" << dir << "/f1.png'\nset title 'F1 (micro / macro, at 0.5 and tuned)'\n"
        "plot '" << dir << "/metrics.csv' using 'epoch':'micro_f1' with linespoints title 'micro @0.5', "
        "'' using 'epoch':'macro_f1' with linespoints title 'macro @0.5', "
        "'' using 'epoch':'tuned_micro_f1' with linespoints title 'micro tuned', "
        "'' using 'epoch':'tuned_macro_f1' with linespoints title 'macro tuned'\n"
        "set output '" << dir << "/map.png'\nset title 'mAP'\n"
        "plot '" << dir << "/metrics.csv' using 'epoch':'map' with linespoints title 'val mAP'\n"
        "set output '" << dir << "/per_class_ap.png'\nset title 'average precision per class'\n"
        "set style fill solid 0.6\nset boxwidth 0.8\nset xtics rotate by 60 right\n"
        "set xlabel ''\nset xtics autofreq\nset yrange [0:1]\n"
        "plot '" << dir << "/per_class.csv' using 0:'ap':xtic(1) with boxes notitle\n";
  gp.close();
  if (!have_gnuplot()) return false;
  return std::system(("gnuplot '" + script + "' 2>/dev/null").c_str()) == 0;
}

}  // namespace coco_train

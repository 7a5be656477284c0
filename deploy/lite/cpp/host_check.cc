// The detector's pre- and post-processing without Paddle Lite, for checking them against
// paddleface's Python on any host (tests/test_lite_arm.py compiles this with the host g++):
//
//   host_check DEPLOY_JSON IMAGE.ppm prepare OUT.f32   -> int32 width, height, then 3xHxW floats
//   host_check DEPLOY_JSON IMAGE.ppm detect OUTPUTS.f32 NUM_PRIORS
//       OUTPUTS.f32: loc (P x 4), conf (P x (1 + labels))[, landms (P x 10)] as float32,
//       computed on the input `prepare` wrote; prints one face per line: box, score[, 10
//       landmark values][, the label's name when deploy.json has more than one label]
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "deploy_config.h"
#include "face_detector.h"
#include "image_io.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: host_check DEPLOY_JSON IMAGE.ppm prepare OUT.f32 | "
                 "detect OUTPUTS.f32 NUM_PRIORS\n";
    return 2;
  }
  try {
    const paddleface::DeployConfig cfg = paddleface::LoadDeployConfig(argv[1]);
    const paddleface::NetworkInput in =
        paddleface::Prepare(cfg.preprocess, paddleface::ReadPnm(argv[2]));
    const std::string mode = argv[3];
    if (mode == "prepare") {
      std::ofstream out(argv[4], std::ios::binary);
      const int size[2] = {in.width, in.height};
      out.write(reinterpret_cast<const char*>(size), sizeof(size));
      out.write(reinterpret_cast<const char*>(in.chw.data()), in.chw.size() * sizeof(float));
      return out ? 0 : 1;
    }
    if (mode != "detect" || argc < 6) throw std::runtime_error("unknown mode " + mode);
    const size_t priors = std::strtoul(argv[5], nullptr, 10);
    const size_t columns = cfg.labels.size() + 1;
    std::vector<float> outputs(priors * (4 + columns + (cfg.landmarks ? 10 : 0)));
    std::ifstream f(argv[4], std::ios::binary);
    f.read(reinterpret_cast<char*>(outputs.data()), outputs.size() * sizeof(float));
    if (!f) throw std::runtime_error(std::string(argv[4]) + ": too short");
    const float* loc = outputs.data();
    const float* landms = cfg.landmarks ? loc + (4 + columns) * priors : nullptr;
    const auto faces = paddleface::Postprocess(
        loc, loc + 4 * priors, landms, priors,
        paddleface::Priors(cfg.anchors, in.height, in.width), cfg.anchors, cfg.detection, in,
        static_cast<int>(cfg.labels.size()));
    for (const auto& face : faces) {
      std::printf("%.6f %.6f %.6f %.6f %.8f", face.box[0], face.box[1], face.box[2], face.box[3],
                  face.score);
      for (int k = 0; face.has_landmarks && k < 10; ++k) std::printf(" %.6f", face.landmarks[k]);
      if (cfg.labels.size() > 1) std::printf(" %s", cfg.labels[face.label].c_str());
      std::printf("\n");
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

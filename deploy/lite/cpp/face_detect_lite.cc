// Face detection with a Paddle Lite .nb model exported by `paddleface export ID --format lite`.
//
//   face_detect_lite MODEL_DIR IMAGE.ppm... [--model FILE.nb] [--json OUT.json] [--draw DIR]
//                    [--threads N] [--no-clip]
//
// MODEL_DIR holds deploy.json and the .nb files; --model picks one of them (default
// model_arm.nb; a bare name is looked up in MODEL_DIR). Images are binary PPM/PGM files:
// `python deploy/lite/to_ppm.py PHOTO...` writes them. Everything model-specific (resize rule,
// normalisation, anchors, thresholds, landmarks) comes from deploy.json; the pre- and
// post-processing are face_detector.cc. Prints "IMAGE: N faces" per image like `paddleface
// detect`; --json writes {"model_dir", "model", "images": {IMAGE: [{"box", "score",
// "landmarks"}]}}; --draw writes IMAGE_NAME.ppm with the faces drawn. Boxes are clipped to
// the image as `paddleface detect` clips them; --no-clip keeps the decoded values (WIDER
// evaluation protocols).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "deploy_config.h"
#include "face_detector.h"
#include "image_io.h"
#include "paddle_api.h"

namespace {

using paddleface::Face;

struct Options {
  std::string model_dir, model = "model_arm.nb", json, draw;
  std::vector<std::string> images;
  int threads = 1;
  bool clip = true;
};

const char kUsage[] =
    "usage: face_detect_lite MODEL_DIR IMAGE.ppm... [--model FILE.nb] [--json OUT.json] "
    "[--draw DIR] [--threads N] [--no-clip]";

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") o.model = value();
    else if (a == "--json") o.json = value();
    else if (a == "--draw") o.draw = value();
    else if (a == "--threads") o.threads = std::atoi(value().c_str());
    else if (a == "--no-clip") o.clip = false;
    else if (a == "-h" || a == "--help") throw std::invalid_argument("");
    else if (a.size() > 1 && a[0] == '-') throw std::runtime_error("unknown option " + a);
    else positional.push_back(a);
  }
  if (positional.size() < 2) throw std::invalid_argument("");
  o.model_dir = positional[0];
  o.images.assign(positional.begin() + 1, positional.end());
  if (o.threads < 1) throw std::runtime_error("--threads must be at least 1");
  if (!IsDir(o.model_dir))
    throw std::runtime_error(o.model_dir + ": no such folder; MODEL_DIR must be the output "
                             "folder of `paddleface export ID --format lite`");
  if (o.model.find('/') == std::string::npos) o.model = o.model_dir + "/" + o.model;
  return o;
}

// The .nb starts with a 2-byte meta version and the 16-byte version of the opt that wrote it;
// Lite refuses a model from another version with a long fatal log, so say it plainly first.
// build_arm.sh defines PADDLEFACE_LITE_VERSION as the version the runtime was built as.
void CheckModelFile(const std::string& path) {
  if (!IsFile(path))
    throw std::runtime_error(path + ": no such model file (the export writes model_arm.nb, and "
                             "model_arm_int8.nb / model_arm_int8_weights.nb for int8)");
  std::ifstream in(path, std::ios::binary);
  char header[18] = {0};
  in.read(header, sizeof(header));
  std::string opt_version(header + 2, strnlen(header + 2, 16));
  const bool printable = !opt_version.empty() &&
      std::all_of(opt_version.begin(), opt_version.end(), [](char c) { return c > 32 && c < 127; });
  if (!in || (header[0] != 1 && header[0] != 2) || header[1] != 0 || !printable)
    throw std::runtime_error(path + ": not a Paddle Lite .nb model (export one with "
                             "`paddleface export ID --format lite`)");
#ifdef PADDLEFACE_LITE_VERSION
  const std::string runtime = PADDLEFACE_LITE_VERSION;
  if (opt_version != runtime)
    throw std::runtime_error(path + ": written by Paddle Lite opt '" + opt_version +
                             "' but this runtime is '" + runtime +
                             "'; export with the matching paddlelite or rebuild the runtime");
#endif
}

// The gist of a Paddle Lite exception, on one line: its first log line without the
// "Paddle-Lite C++ Exception:" header and the "[F date file:line func] " prefix.
std::string LiteReason(const char* what) {
  std::istringstream lines(what);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.find("C++ Exception") != std::string::npos) continue;
    size_t end = line[0] == '[' ? line.find("] ") : std::string::npos;
    if (end != std::string::npos) line = line.substr(end + 2);
    return line.substr(0, 300);
  }
  return "no reason given";
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string FacesJson(const std::vector<Face>& faces, const std::vector<std::string>& labels) {
  std::ostringstream os;
  char buf[64];
  os << "[";
  for (size_t i = 0; i < faces.size(); ++i) {
    const Face& f = faces[i];
    std::snprintf(buf, sizeof(buf), "[%.4f, %.4f, %.4f, %.4f]", f.box[0], f.box[1], f.box[2],
                  f.box[3]);
    os << (i ? ",\n   " : "\n   ") << "{\"box\": " << buf;
    std::snprintf(buf, sizeof(buf), "%.7f", f.score);
    os << ", \"score\": " << buf << ", \"label\": " << JsonString(labels[f.label]);
    if (f.has_landmarks) {
      os << ", \"landmarks\": [";
      for (int k = 0; k < 5; ++k) {
        std::snprintf(buf, sizeof(buf), "%s[%.4f, %.4f]", k ? ", " : "", f.landmarks[2 * k],
                      f.landmarks[2 * k + 1]);
        os << buf;
      }
      os << "]";
    }
    os << "}";
  }
  os << (faces.empty() ? "]" : "\n  ]");
  return os.str();
}

std::string Stem(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  return name.substr(0, name.find_last_of('.'));
}

int Run(const Options& o) {
  using namespace paddle::lite_api;  // NOLINT
  const paddleface::DeployConfig cfg = paddleface::LoadDeployConfig(o.model_dir + "/deploy.json");
  CheckModelFile(o.model);
  MobileConfig config;
  config.set_model_from_file(o.model);
  config.set_threads(o.threads);
  config.set_power_mode(LITE_POWER_NO_BIND);
  std::shared_ptr<PaddlePredictor> predictor;
  try {
    predictor = CreatePaddlePredictor<MobileConfig>(config);
  } catch (const std::exception& e) {
    throw std::runtime_error(o.model + ": Paddle Lite could not load it (" +
                             LiteReason(e.what()) + ")");
  }
  const size_t n_outputs = cfg.landmarks ? 3 : 2;
  if (predictor->GetOutputNames().size() < n_outputs)
    throw std::runtime_error(o.model + ": has " +
                             std::to_string(predictor->GetOutputNames().size()) +
                             " outputs but deploy.json describes " + std::to_string(n_outputs) +
                             "; the .nb and deploy.json come from different exports");
  if (!o.draw.empty() && !IsDir(o.draw) && mkdir(o.draw.c_str(), 0755) != 0)
    throw std::runtime_error(o.draw + ": cannot create this folder");

  std::ostringstream json;
  json << "{\"model_dir\": " << JsonString(o.model_dir) << ", \"model\": " << JsonString(o.model)
       << ", \"images\": {";
  int failed = 0, done = 0;
  for (const std::string& path : o.images) {
    paddleface::Image image;
    try {
      image = paddleface::ReadPnm(path);
    } catch (const std::runtime_error& e) {
      std::cerr << "error: " << e.what() << "\n";
      ++failed;
      continue;
    }
    paddleface::NetworkInput in = paddleface::Prepare(cfg.preprocess, image);
    auto input = predictor->GetInput(0);
    input->Resize({1, 3, in.height, in.width});
    std::copy(in.chw.begin(), in.chw.end(), input->mutable_data<float>());
    try {
      predictor->Run();
    } catch (const std::exception& e) {
      throw std::runtime_error(o.model + ": Paddle Lite failed on a " + std::to_string(in.width) +
                               "x" + std::to_string(in.height) + " input (" +
                               LiteReason(e.what()) + ")");
    }
    std::unique_ptr<const Tensor> outs[3];
    for (size_t i = 0; i < n_outputs; ++i) outs[i] = predictor->GetOutput(static_cast<int>(i));
    const size_t num_priors = static_cast<size_t>(outs[1]->shape()[1]);
    if (outs[1]->shape().size() != 3 ||
        static_cast<size_t>(outs[1]->shape()[2]) != cfg.labels.size() + 1)
      throw std::runtime_error(o.model + ": its conf output does not have one column per class "
                               "of deploy.json's labels plus the background; the .nb and "
                               "deploy.json come from different exports");
    std::vector<float> priors = paddleface::Priors(cfg.anchors, in.height, in.width);
    std::vector<Face> faces = paddleface::Postprocess(
        outs[0]->data<float>(), outs[1]->data<float>(),
        cfg.landmarks ? outs[2]->data<float>() : nullptr, num_priors, priors, cfg.anchors,
        cfg.detection, in, static_cast<int>(cfg.labels.size()));
    if (o.clip) paddleface::ClipBoxes(&faces, image.width, image.height);
    std::cout << path << ": " << faces.size() << " faces\n";
    json << (done++ ? ",\n " : "\n ") << JsonString(path) << ": " << FacesJson(faces, cfg.labels);
    if (!o.draw.empty()) {
      paddleface::DrawFaces(&image, faces);
      paddleface::WritePpm(o.draw + "/" + Stem(path) + ".ppm", image);
    }
  }
  json << "\n}}\n";
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << json.str();
    if (!out) throw std::runtime_error(o.json + ": could not be written");
  }
  if (failed) std::cerr << failed << " of " << o.images.size() << " inputs failed\n";
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(ParseArgs(argc, argv));
  } catch (const std::invalid_argument&) {
    std::cerr << kUsage << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 2;
}

// The deploy.json of a `paddleface export`: what the detector needs besides the network.
#pragma once

#include <string>
#include <vector>

namespace paddleface {

// Preprocess of paddleface/registry.py: resize rule, then (x - mean) / std per channel.
struct Preprocess {
  std::string channel_order;  // "RGB" or "BGR": the order of the network's input channels
  float mean[3] = {0, 0, 0};  // per input channel, in channel_order
  double std = 1.0;
  std::string resize;  // "fixed", "long_side", "letterbox" or "square_pad"
  int width = 0, height = 0;  // "size": fixed / letterbox / square_pad
  int long_side = 0;          // "long_side"; 0 = keep the original size
  bool resize_float = false;  // resize_dtype "float32" (landmark models) or "uint8" (ULFD)
  int stride = 16;            // letterbox: padded sides are multiples of this
};

struct Anchors {
  std::vector<std::vector<double>> min_sizes;  // per level, in input pixels
  std::vector<int> steps;
  float variances[2] = {0.1f, 0.2f};
  bool clip = false;
  bool grid_centers = false;  // centers "grid" (ULFD) or "step" (RetinaFace)
};

// DetectionProtocol of paddleface/registry.py. Thresholds are float32 as numpy compares them.
struct Detection {
  float score_threshold = 0, final_threshold = 0, nms_iou = 0;
  int candidates = -1, keep = -1;  // <= 0: no limit
  bool nms_in_pixels = true;       // nms_space "pixels" or "normalized"
  float nms_offset = 1, nms_eps = 0;
  bool has_clamp_min = false;
  float clamp_min = 0;
};

struct DeployConfig {
  std::string model;
  Preprocess preprocess;
  Anchors anchors;
  Detection detection;
  bool landmarks = false;  // outputs are loc, conf[, landms]
  // the non-background classes: conf column i + 1 is labels[i] (exports before the field:
  // one class, "face"); detection runs per class, then merges the classes by score
  std::vector<std::string> labels{"face"};
};

// Reads and checks deploy.json; throws std::runtime_error with one sentence naming the file
// and what is wrong.
DeployConfig LoadDeployConfig(const std::string& path);

}  // namespace paddleface

// What `paddleface detect` does around the network, in C++ (no Paddle Lite, no OpenCV here):
// preprocessing (paddleface/preprocess.py, with OpenCV's bilinear resize reproduced), priors
// (priors.py), decoding (box_coder.py), NMS (nms.py) and the post-processing order of
// postprocess.py, in the same float32 arithmetic.
#pragma once

#include <cstddef>
#include <vector>

#include "deploy_config.h"
#include "image_io.h"

namespace paddleface {

struct NetworkInput {
  int width = 0, height = 0;
  std::vector<float> chw;  // 3 x height x width, normalised, in the model's channel order
  // a normalised x (y) times to_pixels[0] ([1]) plus offset[0] ([1]) is an original-image pixel
  float to_pixels[2] = {0, 0};
  float offset[2] = {0, 0};
};

struct Face {
  float box[4];  // x1 y1 x2 y2, original-image pixels
  float score;
  int label = 0;  // index into DeployConfig::labels
  bool has_landmarks = false;
  float landmarks[10];  // 5 x (x, y): eyes, nose, mouth corners
};

NetworkInput Prepare(const Preprocess& spec, const Image& image);

// (P x 4) centre-form priors, normalised by the input size, in the order of the network's
// predictions.
std::vector<float> Priors(const Anchors& anchors, int height, int width);

// loc (P x 4), conf (P x (1 + num_labels), softmax, column 0 = background, column c + 1 =
// label c), landms (P x 10 or null). Threshold, top-k, NMS and keep-k run within each class
// (postprocess_classes of postprocess.py); the classes are merged by score, highest first,
// ties in class order.
std::vector<Face> Postprocess(const float* loc, const float* conf, const float* landms,
                              size_t num_priors, const std::vector<float>& priors,
                              const Anchors& anchors, const Detection& protocol,
                              const NetworkInput& input, int num_labels = 1);

// Boxes clipped to [0, width] x [0, height] (what `paddleface detect` reports; evaluation
// protocols keep the decoded values).
void ClipBoxes(std::vector<Face>* faces, int width, int height);

// Boxes (green for label 0, orange for label 1, ...) and landmark dots drawn into the image.
void DrawFaces(Image* image, const std::vector<Face>& faces);

// OpenCV's cv::resize(INTER_LINEAR) of an H x W x 3 image, uint8 (fixed-point) or float32.
// inv_scale_x/y are OpenCV's: dst / src when a size is given, the factor when fx/fy are.
void ResizeLinear(const uint8_t* src, int sw, int sh, uint8_t* dst, int dw, int dh,
                  double inv_scale_x, double inv_scale_y);
void ResizeLinear(const float* src, int sw, int sh, float* dst, int dw, int dh,
                  double inv_scale_x, double inv_scale_y);

}  // namespace paddleface

// Minimal Paddle Lite (ARM) example for a ULFD .nb model exported by `paddleface export`.
// NOT built or tested on the project's machines (no NDK or Lite ARM libraries there); see README.
#include <iostream>
#include <vector>

#include <opencv2/opencv.hpp>

#include "paddle_api.h"

using namespace paddle::lite_api;  // NOLINT

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " model_arm.nb image.jpg\n";
    return 2;
  }
  MobileConfig config;
  config.set_model_from_file(argv[1]);
  config.set_threads(2);
  config.set_power_mode(LITE_POWER_HIGH);
  auto predictor = CreatePaddlePredictor<MobileConfig>(config);

  cv::Mat bgr = cv::imread(argv[2]);
  if (bgr.empty()) {
    std::cerr << argv[2] << ": not a readable image\n";
    return 1;
  }
  const int w = 320, h = 240;  // the model's input size (deploy.json: input_shape)
  cv::Mat rgb;
  cv::resize(bgr, rgb, cv::Size(w, h));
  cv::cvtColor(rgb, rgb, cv::COLOR_BGR2RGB);

  auto input = predictor->GetInput(0);
  input->Resize({1, 3, h, w});
  float* data = input->mutable_data<float>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)  // NCHW, (x - 127) / 128
        data[c * h * w + y * w + x] = (rgb.at<cv::Vec3b>(y, x)[c] - 127.f) / 128.f;

  predictor->Run();
  auto loc = predictor->GetOutput(0);   // (1, P, 4) box offsets
  auto conf = predictor->GetOutput(1);  // (1, P, 2) softmax scores
  const int64_t priors = conf->shape()[1];
  const float* scores = conf->data<float>();
  int best = 0;
  for (int64_t i = 1; i < priors; ++i)
    if (scores[2 * i + 1] > scores[2 * best + 1]) best = static_cast<int>(i);
  std::cout << priors << " priors; best face score " << scores[2 * best + 1] << " at prior " << best
            << " (decode with the anchors of deploy.json, then NMS)\n";
  (void)loc;
  return 0;
}

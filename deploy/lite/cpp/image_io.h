// Binary PNM images (P6 colour, P5 grey): the detector's input without an image library.
// `python deploy/lite/to_ppm.py PHOTO...` writes them with paddleface's own decoder (OpenCV),
// so the C++ detector sees exactly the pixels `paddleface detect` sees.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace paddleface {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> bgr;  // height x width x 3, row-major, BGR (OpenCV's order)
};

// Throws std::runtime_error with one sentence when the file is missing or not a binary
// 8-bit PPM/PGM.
Image ReadPnm(const std::string& path);
void WritePpm(const std::string& path, const Image& image);

}  // namespace paddleface

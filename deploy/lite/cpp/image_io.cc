#include "image_io.h"

#include <cctype>
#include <fstream>
#include <stdexcept>

namespace paddleface {
namespace {

// The next header number, skipping whitespace and '#' comments.
int HeaderNumber(std::istream& in) {
  int c = in.get();
  while (c != EOF) {
    if (c == '#') {
      while (c != EOF && c != '\n') c = in.get();
    } else if (!std::isspace(c)) {
      break;
    }
    c = in.get();
  }
  long value = -1;
  if (c != EOF && std::isdigit(c)) {
    value = 0;
    while (c != EOF && std::isdigit(c) && value < (1L << 30)) {
      value = value * 10 + (c - '0');
      c = in.get();
    }
  }
  return static_cast<int>(value);  // the single whitespace after the number is consumed
}

}  // namespace

Image ReadPnm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": no such file or not readable");
  const std::string convert =
      "; convert photos with `python deploy/lite/to_ppm.py PHOTO...`";
  char magic[2] = {0, 0};
  in.read(magic, 2);
  if (!in || magic[0] != 'P' || (magic[1] != '6' && magic[1] != '5'))
    throw std::runtime_error(path + ": not a binary PPM/PGM image (P6/P5)" + convert);
  const int channels = magic[1] == '6' ? 3 : 1;
  Image image;
  image.width = HeaderNumber(in);
  image.height = HeaderNumber(in);
  const int maxval = HeaderNumber(in);
  if (image.width <= 0 || image.height <= 0 || maxval != 255 ||
      static_cast<long long>(image.width) * image.height > (1LL << 28))
    throw std::runtime_error(path + ": unsupported PPM header (8-bit images up to 2^28 pixels "
                             "only)" + convert);
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> raw(pixels * channels);
  in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
  if (static_cast<size_t>(in.gcount()) != raw.size())
    throw std::runtime_error(path + ": the PPM file is truncated" + convert);
  image.bgr.resize(pixels * 3);
  for (size_t i = 0; i < pixels; ++i) {
    if (channels == 3) {  // PPM stores RGB
      image.bgr[3 * i] = raw[3 * i + 2];
      image.bgr[3 * i + 1] = raw[3 * i + 1];
      image.bgr[3 * i + 2] = raw[3 * i];
    } else {
      image.bgr[3 * i] = image.bgr[3 * i + 1] = image.bgr[3 * i + 2] = raw[i];
    }
  }
  return image;
}

void WritePpm(const std::string& path, const Image& image) {
  std::ofstream out(path, std::ios::binary);
  out << "P6\n" << image.width << " " << image.height << "\n255\n";
  std::vector<uint8_t> rgb(image.bgr.size());
  for (size_t i = 0; i + 2 < rgb.size(); i += 3) {
    rgb[i] = image.bgr[i + 2];
    rgb[i + 1] = image.bgr[i + 1];
    rgb[i + 2] = image.bgr[i];
  }
  out.write(reinterpret_cast<const char*>(rgb.data()), static_cast<std::streamsize>(rgb.size()));
  if (!out) throw std::runtime_error(path + ": could not be written");
}

}  // namespace paddleface

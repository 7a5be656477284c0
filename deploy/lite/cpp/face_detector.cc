#include "face_detector.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace paddleface {
namespace {

// OpenCV's cvFloor and cvRound (round half to even, as lrint in the default rounding mode).
int Floor(float v) {
  int i = static_cast<int>(v);
  return i - (i > v);
}
int RoundHalfEven(double v) { return static_cast<int>(std::nearbyint(v)); }

// OpenCV's INTER_LINEAR taps along one axis (imgproc/src/resize.cpp): source index and the two
// weights per destination index. Along x, a source index past either border is clamped with
// weight (1, 0) and the destinations from `last_pair` on read one pixel only; along y the
// weights are kept and the two rows are clamped when read.
struct Taps {
  std::vector<int> index;
  std::vector<float> weight;  // 2 per destination
  int last_pair;
};

Taps LinearTaps(int src_size, int dst_size, double scale, bool clamp, bool in_double) {
  Taps t;
  t.index.resize(dst_size);
  t.weight.resize(2 * dst_size);
  t.last_pair = dst_size;
  for (int d = 0; d < dst_size; ++d) {
    double exact = (d + 0.5) * scale - 0.5;
    float f = static_cast<float>(exact);
    int s = Floor(f);
    f = in_double ? static_cast<float>(exact - s) : f - s;
    if (clamp) {
      if (s < 0) f = 0, s = 0;
      if (s + 1 >= src_size) {
        t.last_pair = std::min(t.last_pair, d);
        if (s >= src_size - 1) f = 0, s = src_size - 1;
      }
    }
    t.index[d] = s;
    t.weight[2 * d] = 1.f - f;
    t.weight[2 * d + 1] = f;
  }
  return t;
}

constexpr int kCoefBits = 11;  // INTER_RESIZE_COEF_BITS
constexpr int kCoefScale = 1 << kCoefBits;

int16_t FixedPoint(float w) {  // saturate_cast<short>(w * INTER_RESIZE_COEF_SCALE)
  int v = RoundHalfEven(w * kCoefScale);
  return static_cast<int16_t>(std::min(32767, std::max(-32768, v)));
}

// OpenCV's 2x2 "fast area" resize, which cv::resize uses instead of INTER_LINEAR when both
// scale factors are exactly 2: the mean of each 2x2 block (uint8: SIMD's rounding shift).
uint8_t BlockMean(int sum, uint8_t) { return static_cast<uint8_t>((sum + 2) >> 2); }
float BlockMean(float sum, float) { return sum * 0.25f; }

template <typename T>
void HalveArea(const T* src, int sw, T* dst, int dw, int dh) {
  for (int y = 0; y < dh; ++y) {
    const T* r0 = src + static_cast<size_t>(2 * y) * sw * 3;
    const T* r1 = r0 + static_cast<size_t>(sw) * 3;
    T* out = dst + static_cast<size_t>(y) * dw * 3;
    for (int x = 0; x < dw; ++x)
      for (int c = 0; c < 3; ++c) {
        int i = 6 * x + c;
        out[3 * x + c] = BlockMean(r0[i] + r0[i + 3] + r1[i] + r1[i + 3], T());
      }
  }
}

bool ExactlyHalf(double inv_scale_x, double inv_scale_y) {
  double sx = 1. / inv_scale_x, sy = 1. / inv_scale_y;
  return std::abs(sx - 2) < 2.2204460492503131e-16 && std::abs(sy - 2) < 2.2204460492503131e-16;
}

}  // namespace

void ResizeLinear(const uint8_t* src, int sw, int sh, uint8_t* dst, int dw, int dh,
                  double inv_scale_x, double inv_scale_y) {
  if (ExactlyHalf(inv_scale_x, inv_scale_y)) return HalveArea(src, sw, dst, dw, dh);
  Taps tx = LinearTaps(sw, dw, 1. / inv_scale_x, true, false);
  Taps ty = LinearTaps(sh, dh, 1. / inv_scale_y, false, false);
  const int width = dw * 3;
  std::vector<int16_t> ax(tx.weight.size());
  for (size_t i = 0; i < ax.size(); ++i) ax[i] = FixedPoint(tx.weight[i]);
  std::vector<int> row0(width), row1(width);
  auto horizontal = [&](int sy, std::vector<int>* out) {
    const uint8_t* s = src + static_cast<size_t>(sy) * sw * 3;
    for (int x = 0; x < dw; ++x)
      for (int c = 0; c < 3; ++c) {
        int i = 3 * tx.index[x] + c;
        (*out)[3 * x + c] = x < tx.last_pair ? s[i] * ax[2 * x] + s[i + 3] * ax[2 * x + 1]
                                             : s[i] * kCoefScale;
      }
  };
  // OpenCV's vertical pass runs 128-bit SIMD (SSE2 or NEON) over whole vectors of 16, then of
  // 8 values, and scalar code over the rest; the two round differently.
  int simd_end = width / 16 * 16;
  if (width - simd_end > 8) simd_end += 8;
  for (int y = 0; y < dh; ++y) {
    int y0 = std::min(std::max(ty.index[y], 0), sh - 1);
    int y1 = std::min(std::max(ty.index[y] + 1, 0), sh - 1);
    horizontal(y0, &row0);
    horizontal(y1, &row1);
    int b0 = FixedPoint(ty.weight[2 * y]), b1 = FixedPoint(ty.weight[2 * y + 1]);
    uint8_t* out = dst + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      int v;
      if (x < simd_end) {  // v_mul_hi of (S >> 4) and beta, summed, then a rounding shift by 2
        int hi = ((row0[x] >> 4) * b0 >> 16) + ((row1[x] >> 4) * b1 >> 16);
        v = (hi + 2) >> 2;
      } else {
        v = (row0[x] * b0 + row1[x] * b1 + (1 << 21)) >> 22;
      }
      out[x] = static_cast<uint8_t>(std::min(255, std::max(0, v)));
    }
  }
}

void ResizeLinear(const float* src, int sw, int sh, float* dst, int dw, int dh,
                  double inv_scale_x, double inv_scale_y) {
  if (ExactlyHalf(inv_scale_x, inv_scale_y)) return HalveArea(src, sw, dst, dw, dh);
  Taps tx = LinearTaps(sw, dw, 1. / inv_scale_x, true, true);
  Taps ty = LinearTaps(sh, dh, 1. / inv_scale_y, false, true);
  const int width = dw * 3;
  std::vector<float> row0(width), row1(width);
  auto horizontal = [&](int sy, std::vector<float>* out) {
    const float* s = src + static_cast<size_t>(sy) * sw * 3;
    for (int x = 0; x < dw; ++x)
      for (int c = 0; c < 3; ++c) {
        int i = 3 * tx.index[x] + c;
        (*out)[3 * x + c] = x < tx.last_pair
                                ? s[i] * tx.weight[2 * x] + s[i + 3] * tx.weight[2 * x + 1]
                                : s[i];
      }
  };
  for (int y = 0; y < dh; ++y) {
    int y0 = std::min(std::max(ty.index[y], 0), sh - 1);
    int y1 = std::min(std::max(ty.index[y] + 1, 0), sh - 1);
    horizontal(y0, &row0);
    horizontal(y1, &row1);
    float b0 = ty.weight[2 * y], b1 = ty.weight[2 * y + 1];
    float* out = dst + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) out[x] = row0[x] * b0 + row1[x] * b1;
  }
}

namespace {

// An H x W x 3 BGR image in uint8 or float32 (the dtype the model's upstream code resizes in).
struct Pixels {
  int width = 0, height = 0;
  bool is_float = false;
  std::vector<uint8_t> u8;
  std::vector<float> f32;

  float At(size_t i) const { return is_float ? f32[i] : static_cast<float>(u8[i]); }
};

Pixels Resized(const Pixels& src, int dw, int dh, double inv_scale_x, double inv_scale_y) {
  Pixels out;
  out.width = dw;
  out.height = dh;
  out.is_float = src.is_float;
  if (src.is_float) {
    out.f32.resize(static_cast<size_t>(dw) * dh * 3);
    ResizeLinear(src.f32.data(), src.width, src.height, out.f32.data(), dw, dh, inv_scale_x,
                 inv_scale_y);
  } else {
    out.u8.resize(static_cast<size_t>(dw) * dh * 3);
    ResizeLinear(src.u8.data(), src.width, src.height, out.u8.data(), dw, dh, inv_scale_x,
                 inv_scale_y);
  }
  return out;
}

// src placed at (left, top) of a w x h canvas filled with `fill` (BGR).
Pixels Placed(const Pixels& src, int w, int h, int left, int top, const float fill[3]) {
  Pixels out;
  out.width = w;
  out.height = h;
  out.is_float = src.is_float;
  size_t n = static_cast<size_t>(w) * h * 3;
  if (src.is_float) out.f32.resize(n); else out.u8.resize(n);
  for (size_t i = 0; i < n; ++i) {  // numpy / OpenCV store a float fill in uint8 truncated
    if (src.is_float) out.f32[i] = fill[i % 3];
    else out.u8[i] = static_cast<uint8_t>(fill[i % 3]);
  }
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width * 3; ++x) {
      size_t s = static_cast<size_t>(y) * src.width * 3 + x;
      size_t d = static_cast<size_t>(y + top) * w * 3 + static_cast<size_t>(left) * 3 + x;
      if (src.is_float) out.f32[d] = src.f32[s]; else out.u8[d] = src.u8[s];
    }
  return out;
}

}  // namespace

// preprocess.pad_short_side: pad the bottom / right edge with the mean colour so that neither
// side scales to less than one pixel (pixel coordinates unchanged).
Pixels PadShortSide(const Pixels& px, double ratio, const float fill[3]) {
  const int need = static_cast<int>(std::ceil(1.0 / ratio));
  if (std::min(px.width, px.height) >= need) return px;
  return Placed(px, std::max(px.width, need), std::max(px.height, need), 0, 0, fill);
}

NetworkInput Prepare(const Preprocess& spec, const Image& image) {
  const int w = image.width, h = image.height;
  Pixels px;
  px.width = w;
  px.height = h;
  px.is_float = spec.resize_float;
  if (px.is_float) px.f32.assign(image.bgr.begin(), image.bgr.end());
  else px.u8 = image.bgr;
  // the mean in BGR order, as the padding colour (Preprocess.mean is in channel_order)
  const bool rgb = spec.channel_order == "RGB";
  const float bgr_mean[3] = {spec.mean[rgb ? 2 : 0], spec.mean[1], spec.mean[rgb ? 0 : 2]};
  double fx = 1, fy = 1;
  int left = 0, top = 0;
  if (spec.resize == "fixed") {
    if (spec.width != w || spec.height != h) {
      fx = static_cast<double>(spec.width) / w;
      fy = static_cast<double>(spec.height) / h;
      px = Resized(px, spec.width, spec.height, fx, fy);
    }
  } else if (spec.resize == "letterbox") {  // preprocess.letterbox (YOLO's, auto padding)
    const int side = spec.width;
    px = PadShortSide(px, static_cast<double>(side) / std::max(w, h), bgr_mean);
    const int pw = px.width, ph = px.height;  // as padded
    const double r = std::min(static_cast<double>(side) / ph, static_cast<double>(side) / pw);
    const int nw = RoundHalfEven(pw * r), nh = RoundHalfEven(ph * r);
    const double dw = ((side - nw) % spec.stride) / 2.0, dh = ((side - nh) % spec.stride) / 2.0;
    if (nw != pw || nh != ph)
      px = Resized(px, nw, nh, static_cast<double>(nw) / pw, static_cast<double>(nh) / ph);
    top = RoundHalfEven(dh - 0.1);
    const int bottom = RoundHalfEven(dh + 0.1);
    left = RoundHalfEven(dw - 0.1);
    const int right = RoundHalfEven(dw + 0.1);
    px = Placed(px, nw + left + right, nh + top + bottom, left, top, bgr_mean);
    fx = fy = r;
  } else if (spec.resize == "square_pad") {
    const int side = spec.width, s = std::max(w, h);
    px = Placed(px, s, s, 0, 0, bgr_mean);
    fx = fy = static_cast<double>(side) / s;
    px = Resized(px, side, side, fx, fy);
  } else {  // long_side: cv2.resize(fx=r, fy=r) sizes the output round(w * r) x round(h * r)
    if (spec.long_side > 0 && spec.long_side != std::max(w, h)) {
      const double r = static_cast<double>(spec.long_side) / std::max(w, h);
      px = PadShortSide(px, r, bgr_mean);
      px = Resized(px, RoundHalfEven(px.width * r), RoundHalfEven(px.height * r), r, r);
      fx = fy = r;
    }
  }

  NetworkInput in;
  in.width = px.width;
  in.height = px.height;
  in.to_pixels[0] = static_cast<float>(px.width / fx);
  in.to_pixels[1] = static_cast<float>(px.height / fy);
  in.offset[0] = static_cast<float>(-left / fx);
  in.offset[1] = static_cast<float>(-top / fy);
  const size_t plane = static_cast<size_t>(px.width) * px.height;
  in.chw.resize(3 * plane);
  const float inv_std = static_cast<float>(1.0 / spec.std);
  for (int c = 0; c < 3; ++c) {
    const int src_c = rgb ? 2 - c : c;
    float* out = in.chw.data() + c * plane;
    for (size_t i = 0; i < plane; ++i) {
      float v = px.At(3 * i + src_c) - spec.mean[c];
      out[i] = spec.std != 1.0 ? v * inv_std : v;
    }
  }
  return in;
}

std::vector<float> Priors(const Anchors& a, int height, int width) {
  std::vector<float> priors;
  for (size_t k = 0; k < a.steps.size(); ++k) {
    const int step = a.steps[k];
    const int rows = (height + step - 1) / step, cols = (width + step - 1) / step;
    for (int i = 0; i < rows; ++i)
      for (int j = 0; j < cols; ++j)
        for (double s : a.min_sizes[k]) {
          // computed in float64 and stored as float32, as priors.py does
          double cx = a.grid_centers ? (j + 0.5) / cols : (j + 0.5) * step / width;
          double cy = a.grid_centers ? (i + 0.5) / rows : (i + 0.5) * step / height;
          float p[4] = {static_cast<float>(cx), static_cast<float>(cy),
                        static_cast<float>(s / width), static_cast<float>(s / height)};
          for (float v : p) priors.push_back(a.clip ? std::min(1.f, std::max(0.f, v)) : v);
        }
  }
  return priors;
}

namespace {

// One class (conf column class_index of num_columns) through threshold, top-k, NMS, keep-k.
std::vector<Face> PostprocessClass(const float* loc, const float* conf, const float* landms,
                                   size_t num_priors, const std::vector<float>& priors,
                                   const Anchors& anchors, const Detection& protocol,
                                   const NetworkInput& input, int class_index, int num_columns) {
  const float v0 = anchors.variances[0], v1 = anchors.variances[1];
  const float sx = input.to_pixels[0], sy = input.to_pixels[1];
  const float ox = input.offset[0], oy = input.offset[1];
  // Candidates: over the score threshold and, when it is higher, the final one (greedy NMS
  // never lets a lower score suppress a higher one, so this changes no surviving box).
  struct Candidate {
    size_t prior;
    float score;
    float box[4];
  };
  std::vector<Candidate> cands;
  for (size_t i = 0; i < num_priors; ++i) {
    const float score = conf[num_columns * i + class_index];
    if (!(score > protocol.score_threshold)) continue;
    if (protocol.final_threshold > protocol.score_threshold && !(score >= protocol.final_threshold))
      continue;
    const float* p = &priors[4 * i];
    const float* l = &loc[4 * i];
    const float cx = p[0] + l[0] * v0 * p[2], cy = p[1] + l[1] * v0 * p[3];
    const float w = p[2] * std::exp(l[2] * v1), h = p[3] * std::exp(l[3] * v1);
    Candidate c{i, score, {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}};
    if (protocol.has_clamp_min)
      for (float& v : c.box) v = std::min(1.f, std::max(protocol.clamp_min, v));
    if (protocol.nms_in_pixels) {
      c.box[0] = c.box[0] * sx + ox;
      c.box[1] = c.box[1] * sy + oy;
      c.box[2] = c.box[2] * sx + ox;
      c.box[3] = c.box[3] * sy + oy;
    }
    cands.push_back(c);
  }
  // hard NMS: highest score first (ties keep prior order), optional top-k and keep-k
  std::stable_sort(cands.begin(), cands.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  if (protocol.candidates > 0 && cands.size() > static_cast<size_t>(protocol.candidates))
    cands.resize(protocol.candidates);
  const float off = protocol.nms_offset, eps = protocol.nms_eps;
  auto iou = [&](const float* a, const float* b) {
    float w = std::max(0.f, std::min(a[2], b[2]) - std::max(a[0], b[0]) + off);
    float h = std::max(0.f, std::min(a[3], b[3]) - std::max(a[1], b[1]) + off);
    float inter = w * h;
    float area_a = (a[2] - a[0] + off) * (a[3] - a[1] + off);
    float area_b = (b[2] - b[0] + off) * (b[3] - b[1] + off);
    return inter / (area_a + area_b - inter + eps);
  };
  std::vector<const Candidate*> kept;
  std::vector<const Candidate*> remaining;
  for (const Candidate& c : cands) remaining.push_back(&c);
  while (!remaining.empty()) {
    const Candidate* best = remaining.front();
    kept.push_back(best);
    if (protocol.keep > 0 && kept.size() == static_cast<size_t>(protocol.keep)) break;
    std::vector<const Candidate*> rest;
    for (size_t r = 1; r < remaining.size(); ++r)
      if (iou(best->box, remaining[r]->box) <= protocol.nms_iou) rest.push_back(remaining[r]);
    remaining.swap(rest);
  }

  std::vector<Face> faces;
  for (const Candidate* c : kept) {
    Face f;
    std::copy(c->box, c->box + 4, f.box);
    if (!protocol.nms_in_pixels) {
      f.box[0] = f.box[0] * sx + ox;
      f.box[1] = f.box[1] * sy + oy;
      f.box[2] = f.box[2] * sx + ox;
      f.box[3] = f.box[3] * sy + oy;
    }
    f.score = c->score;
    f.label = class_index - 1;
    if (landms) {
      f.has_landmarks = true;
      const float* p = &priors[4 * c->prior];
      const float* l = &landms[10 * c->prior];
      for (int k = 0; k < 5; ++k) {
        f.landmarks[2 * k] = (p[0] + l[2 * k] * v0 * p[2]) * sx + ox;
        f.landmarks[2 * k + 1] = (p[1] + l[2 * k + 1] * v0 * p[3]) * sy + oy;
      }
    }
    faces.push_back(f);
  }
  return faces;
}

}  // namespace

std::vector<Face> Postprocess(const float* loc, const float* conf, const float* landms,
                              size_t num_priors, const std::vector<float>& priors,
                              const Anchors& anchors, const Detection& protocol,
                              const NetworkInput& input, int num_labels) {
  if (priors.size() != 4 * num_priors)
    throw std::runtime_error("the network gave " + std::to_string(num_priors) +
                             " predictions but the anchors of deploy.json number " +
                             std::to_string(priors.size() / 4) + " for a " +
                             std::to_string(input.width) + "x" + std::to_string(input.height) +
                             " input");
  std::vector<Face> faces;
  for (int c = 0; c < num_labels; ++c) {
    std::vector<Face> part = PostprocessClass(loc, conf, landms, num_priors, priors, anchors,
                                              protocol, input, c + 1, num_labels + 1);
    faces.insert(faces.end(), part.begin(), part.end());
  }
  // each class is sorted already; a stable sort keeps class order among equal scores
  std::stable_sort(faces.begin(), faces.end(),
                   [](const Face& a, const Face& b) { return a.score > b.score; });
  return faces;
}

void ClipBoxes(std::vector<Face>* faces, int width, int height) {
  for (Face& f : *faces)
    for (int k = 0; k < 4; ++k)
      f.box[k] = std::min(static_cast<float>(k % 2 ? height : width), std::max(0.f, f.box[k]));
}

void DrawFaces(Image* image, const std::vector<Face>& faces) {
  auto put = [image](int x, int y, uint8_t b, uint8_t g, uint8_t r) {
    if (x < 0 || y < 0 || x >= image->width || y >= image->height) return;
    uint8_t* p = &image->bgr[(static_cast<size_t>(y) * image->width + x) * 3];
    p[0] = b, p[1] = g, p[2] = r;
  };
  const int t = std::max(1, std::min(image->width, image->height) / 300);  // line thickness
  // BGR per label, as paddleface/draw.py: face green, masked_face orange, then others
  static const uint8_t kColors[4][3] = {{0, 255, 0}, {0, 165, 255}, {255, 128, 0}, {255, 0, 255}};
  for (const Face& f : faces) {
    const uint8_t* c = kColors[static_cast<size_t>(f.label) % 4];
    int x1 = static_cast<int>(std::lround(f.box[0])), y1 = static_cast<int>(std::lround(f.box[1]));
    int x2 = static_cast<int>(std::lround(f.box[2])), y2 = static_cast<int>(std::lround(f.box[3]));
    for (int d = 0; d < t; ++d) {
      for (int x = x1; x <= x2; ++x)
        put(x, y1 + d, c[0], c[1], c[2]), put(x, y2 - d, c[0], c[1], c[2]);
      for (int y = y1; y <= y2; ++y)
        put(x1 + d, y, c[0], c[1], c[2]), put(x2 - d, y, c[0], c[1], c[2]);
    }
    if (!f.has_landmarks) continue;
    for (int k = 0; k < 5; ++k) {
      int cx = static_cast<int>(std::lround(f.landmarks[2 * k]));
      int cy = static_cast<int>(std::lround(f.landmarks[2 * k + 1]));
      for (int dy = -t - 1; dy <= t + 1; ++dy)
        for (int dx = -t - 1; dx <= t + 1; ++dx) put(cx + dx, cy + dy, 0, 0, 255);
    }
  }
}

}  // namespace paddleface

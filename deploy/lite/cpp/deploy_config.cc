#include "deploy_config.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace paddleface {
namespace {

// Just enough JSON for deploy.json (Python's json.dumps output): objects, arrays, numbers,
// strings without escapes other than \" \\ \/, true, false, null.
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> fields;
};

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Json Document() {
    Json v = Value();
    Space();
    if (i_ != s_.size()) Fail("text after the end of the JSON value");
    return v;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) {
    throw std::runtime_error("not valid JSON (" + what + " at character " + std::to_string(i_) +
                             ")");
  }
  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool Literal(const char* word) {
    size_t n = std::string(word).size();
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  std::string String() {
    ++i_;  // opening quote
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\') {
        if (++i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\\' && s_[i_] != '/'))
          Fail("an unsupported escape");
      }
      out += s_[i_++];
    }
    if (i_ >= s_.size()) Fail("an unterminated string");
    ++i_;
    return out;
  }
  Json Value() {
    Space();
    if (i_ >= s_.size()) Fail("a missing value");
    Json v;
    char c = s_[i_];
    if (c == '{') {
      v.kind = Json::kObject;
      ++i_;
      Space();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, v;
      while (true) {
        Space();
        if (i_ >= s_.size() || s_[i_] != '"') Fail("a missing key");
        std::string key = String();
        Space();
        if (i_ >= s_.size() || s_[i_++] != ':') Fail("a missing ':'");
        v.fields[key] = Value();
        Space();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == '}') { ++i_; return v; }
        Fail("a missing ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::kArray;
      ++i_;
      Space();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, v;
      while (true) {
        v.items.push_back(Value());
        Space();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == ']') { ++i_; return v; }
        Fail("a missing ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = Json::kString;
      v.text = String();
      return v;
    }
    if (Literal("true")) { v.kind = Json::kBool; v.boolean = true; return v; }
    if (Literal("false")) { v.kind = Json::kBool; return v; }
    if (Literal("null")) return v;
    if (Literal("NaN") || Literal("Infinity") || Literal("-Infinity")) {
      v.kind = Json::kNumber;  // json.dumps writes these for non-finite floats (export report)
      return v;
    }
    const char* start = s_.c_str() + i_;
    char* end = nullptr;
    v.number = std::strtod(start, &end);
    if (end == start) Fail("an unexpected character");
    i_ += end - start;
    v.kind = Json::kNumber;
    return v;
  }

  const std::string& s_;
  size_t i_ = 0;
};

// Lookups that name the missing or mistyped key in their error.
class Reader {
 public:
  Reader(const Json& root, const std::string& file) : root_(root), file_(file) {}

  const Json& Get(const std::string& dotted, Json::Kind kind) const {
    const Json* v = &root_;
    std::stringstream path(dotted);
    std::string key;
    while (std::getline(path, key, '.')) {
      auto it = v->fields.find(key);
      if (v->kind != Json::kObject || it == v->fields.end())
        throw std::runtime_error(file_ + ": '" + dotted + "' is missing; re-export the model with "
                                 "`paddleface export ID --format lite`");
      v = &it->second;
    }
    if (v->kind != kind)
      throw std::runtime_error(file_ + ": '" + dotted + "' has the wrong type");
    return *v;
  }
  bool IsNull(const std::string& dotted) const {
    const Json* v = &root_;
    std::stringstream path(dotted);
    std::string key;
    while (std::getline(path, key, '.')) {
      auto it = v->fields.find(key);
      if (it == v->fields.end()) return true;
      v = &it->second;
    }
    return v->kind == Json::kNull;
  }
  double Number(const std::string& k) const { return Get(k, Json::kNumber).number; }
  std::string Text(const std::string& k) const { return Get(k, Json::kString).text; }
  bool Bool(const std::string& k) const { return Get(k, Json::kBool).boolean; }
  std::vector<double> Numbers(const Json& array, const std::string& k) const {
    std::vector<double> out;
    for (const Json& item : array.items) {
      if (item.kind != Json::kNumber)
        throw std::runtime_error(file_ + ": '" + k + "' must hold numbers");
      out.push_back(item.number);
    }
    return out;
  }
  std::vector<double> Numbers(const std::string& k) const {
    return Numbers(Get(k, Json::kArray), k);
  }
  void Expect(bool ok, const std::string& what) const {
    if (!ok) throw std::runtime_error(file_ + ": " + what);
  }

 private:
  const Json& root_;
  std::string file_;
};

}  // namespace

DeployConfig LoadDeployConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(path + ": missing or unreadable; the model folder must be one "
                             "written by `paddleface export ID --format lite`");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  Json root;
  try {
    root = Parser(text).Document();
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  Reader r(root, path);
  DeployConfig c;
  c.model = r.Text("model");
  for (const Json& o : r.Get("outputs", Json::kArray).items)
    if (o.kind == Json::kString && o.text == "landms") c.landmarks = true;

  if (!r.IsNull("labels")) {
    c.labels.clear();
    for (const Json& l : r.Get("labels", Json::kArray).items) {
      r.Expect(l.kind == Json::kString, "labels must be a list of class names");
      c.labels.push_back(l.text);
    }
    r.Expect(!c.labels.empty(), "labels must name at least one class");
  }

  Preprocess& p = c.preprocess;
  p.channel_order = r.Text("preprocess.channel_order");
  r.Expect(p.channel_order == "RGB" || p.channel_order == "BGR",
           "preprocess.channel_order must be RGB or BGR");
  std::vector<double> mean = r.Numbers("preprocess.mean");
  r.Expect(mean.size() == 3, "preprocess.mean must have 3 values");
  for (int i = 0; i < 3; ++i) p.mean[i] = static_cast<float>(mean[i]);
  p.std = r.Number("preprocess.std");
  r.Expect(p.std > 0, "preprocess.std must be positive");
  p.resize = r.Text("preprocess.resize");
  r.Expect(p.resize == "fixed" || p.resize == "long_side" || p.resize == "letterbox" ||
               p.resize == "square_pad",
           "preprocess.resize '" + p.resize + "' is not one this detector knows");
  if (p.resize != "long_side") {
    std::vector<double> size = r.Numbers("preprocess.size");
    r.Expect(size.size() == 2 && size[0] >= 1 && size[1] >= 1,
             "preprocess.size must be [width, height]");
    p.width = static_cast<int>(size[0]);
    p.height = static_cast<int>(size[1]);
  } else if (!r.IsNull("preprocess.long_side")) {
    p.long_side = static_cast<int>(r.Number("preprocess.long_side"));
    r.Expect(p.long_side >= 1, "preprocess.long_side must be positive");
  }
  p.resize_float = r.Text("preprocess.resize_dtype") == "float32";
  if (!r.IsNull("preprocess.stride")) p.stride = static_cast<int>(r.Number("preprocess.stride"));
  r.Expect(p.stride >= 1, "preprocess.stride must be positive");

  Anchors& a = c.anchors;
  const Json& levels = r.Get("anchors.min_sizes", Json::kArray);
  for (const Json& level : levels.items) {
    r.Expect(level.kind == Json::kArray, "anchors.min_sizes must be a list of lists");
    a.min_sizes.push_back(r.Numbers(level, "anchors.min_sizes"));
  }
  for (double s : r.Numbers("anchors.steps")) a.steps.push_back(static_cast<int>(s));
  r.Expect(!a.steps.empty() && a.steps.size() == a.min_sizes.size(),
           "anchors.steps and anchors.min_sizes must have one entry per level");
  std::vector<double> var = r.Numbers("anchors.variances");
  r.Expect(var.size() == 2, "anchors.variances must have 2 values");
  a.variances[0] = static_cast<float>(var[0]);
  a.variances[1] = static_cast<float>(var[1]);
  a.clip = r.Bool("anchors.clip");
  std::string centers = r.Text("anchors.centers");
  r.Expect(centers == "grid" || centers == "step", "anchors.centers must be grid or step");
  a.grid_centers = centers == "grid";

  Detection& d = c.detection;
  d.score_threshold = static_cast<float>(r.Number("detection.score_threshold"));
  d.final_threshold = static_cast<float>(r.Number("detection.final_threshold"));
  d.nms_iou = static_cast<float>(r.Number("detection.nms_iou"));
  d.candidates = static_cast<int>(r.Number("detection.candidates"));
  d.keep = static_cast<int>(r.Number("detection.keep"));
  std::string space = r.Text("detection.nms_space");
  r.Expect(space == "pixels" || space == "normalized",
           "detection.nms_space must be pixels or normalized");
  d.nms_in_pixels = space == "pixels";
  d.nms_offset = static_cast<float>(r.Number("detection.nms_offset"));
  d.nms_eps = static_cast<float>(r.Number("detection.nms_eps"));
  if (!r.IsNull("detection.clamp_min")) {
    d.has_clamp_min = true;
    d.clamp_min = static_cast<float>(r.Number("detection.clamp_min"));
  }
  return c;
}

}  // namespace paddleface

// The PaddleFace detector in the browser: what `paddleface detect` does around the network
// (paddleface/preprocess.py, priors.py, box_coder.py, nms.py, postprocess.py), driven only by
// deploy.json, with the network run by onnxruntime-web. No model-specific code lives here: a
// model is its deploy.json (the fields deploy/lite/cpp/deploy_config.cc reads) and model.onnx.
//
// Numbers: the network input is computed in float32 exactly as NumPy/OpenCV compute it
// (Math.fround after every operation, OpenCV's INTER_LINEAR reproduced bit for bit), so an
// image decoded to the same pixels gives the same network input as Python.
//
// Images here are {width, height, data, layout}: interleaved pixels, `layout` "BGR" (the
// default) or "RGBA" (a canvas's pixels, used as they are: converting a photo to BGR first
// cost more than the whole resize), data a Uint8Array or a Float32Array (the dtype the model's
// upstream code resizes in). Resizing treats each channel alone, so the layout changes nothing
// but where the model's channels are read.

const f32 = Math.fround;

/** A mistake of the caller or a bad image: its message is one sentence for the page. */
export class DetectError extends Error {}

// Decoding a picture this large takes width * height * 4 bytes in the browser (12000x12000:
// 576 MB) before a single pixel is resized; the page refuses it with a message instead.
export const MAX_SOURCE_PIXELS = 64e6;
// paddleface.detector.MAX_INPUT_PIXELS: a network input this large takes about 4 GB.
export const MAX_INPUT_PIXELS = 4096 * 4096;

// ------------------------------------------------------------------------------ deploy.json
/**
 * Check and complete a parsed deploy.json. Returns it with `labels` (the names of the
 * non-background classes; conf column i + 1 is labels[i]; default ["face"]).
 */
export function readConfig(json) {
  const need = (cond, what) => { if (!cond) throw new DetectError(`deploy.json: ${what}`); };
  need(json && typeof json === "object", "not a JSON object");
  const p = json.preprocess, a = json.anchors, d = json.detection;
  need(p && a && d, "'preprocess', 'anchors' and 'detection' are required");
  need(p.channel_order === "RGB" || p.channel_order === "BGR", "preprocess.channel_order must be RGB or BGR");
  need(Array.isArray(p.mean) && p.mean.length === 3, "preprocess.mean must have 3 values");
  need(p.std > 0, "preprocess.std must be positive");
  need(["fixed", "long_side", "letterbox", "square_pad"].includes(p.resize),
       `preprocess.resize '${p.resize}' is not one this detector knows`);
  if (p.resize !== "long_side") need(Array.isArray(p.size) && p.size.length === 2, "preprocess.size must be [width, height]");
  need(Array.isArray(a.min_sizes) && a.min_sizes.length === a.steps.length, "anchors.steps and anchors.min_sizes must have one entry per level");
  need(a.centers === "grid" || a.centers === "step", "anchors.centers must be grid or step");
  need(d.nms_space === "pixels" || d.nms_space === "normalized", "detection.nms_space must be pixels or normalized");
  const labels = Array.isArray(json.labels) && json.labels.length ? json.labels : ["face"];
  const outputs = json.outputs || ["loc", "conf"];
  return {...json, labels, outputs, landmarks: outputs.includes("landms")};
}

// ------------------------------------------------------------------------------ resizing
// cvRound: round half to even (lrint in the default rounding mode).
export function roundHalfEven(v) {
  const r = Math.round(v);
  return (r - v === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// OpenCV's INTER_LINEAR taps along one axis (imgproc/src/resize.cpp): per destination index
// the source index and two weights, with half-pixel centres. Along x a source index past a
// border is clamped with weights (1, 0), and from `lastPair` on a destination reads one pixel;
// along y the weights stay and the rows are clamped when read. `inDouble`: the float32 path
// takes the fraction from the double coordinate, the uint8 path from its float32 rounding.
function linearTaps(srcSize, dstSize, scale, clamp, inDouble) {
  const index = new Int32Array(dstSize), weight = new Float32Array(2 * dstSize);
  let lastPair = dstSize;
  for (let d = 0; d < dstSize; d++) {
    const exact = (d + 0.5) * scale - 0.5;
    let f = f32(exact);
    let s = Math.floor(f);
    f = inDouble ? f32(exact - s) : f32(f - s);
    if (clamp) {
      if (s < 0) { f = 0; s = 0; }
      if (s + 1 >= srcSize) {
        lastPair = Math.min(lastPair, d);
        if (s >= srcSize - 1) { f = 0; s = srcSize - 1; }
      }
    }
    index[d] = s;
    weight[2 * d] = f32(1 - f);
    weight[2 * d + 1] = f;
  }
  return {index, weight, lastPair};
}

const COEF_BITS = 11, COEF_SCALE = 1 << COEF_BITS;  // INTER_RESIZE_COEF_BITS

function fixedPoint(w) {  // saturate_cast<short>(w * INTER_RESIZE_COEF_SCALE)
  return Math.min(32767, Math.max(-32768, roundHalfEven(f32(w * COEF_SCALE))));
}

// cv::resize takes its 2x2 "area" path instead of INTER_LINEAR when both factors are exactly 2.
function exactlyHalf(invX, invY) {
  return Math.abs(1 / invX - 2) < 2.220446049250313e-16 && Math.abs(1 / invY - 2) < 2.220446049250313e-16;
}

const layoutOf = (img) => img.layout || "BGR";

function halveArea(src, dw, dh, isFloat) {
  const sw = src.width, layout = layoutOf(src), cn = layout.length, outLayout = layout.replace("A", "");
  const chan = Array.from(outLayout, (ch) => layout.indexOf(ch)), s = src.data;
  const out = isFloat ? new Float32Array(dw * dh * 3) : new Uint8Array(dw * dh * 3);
  for (let y = 0; y < dh; y++) {
    const r0 = 2 * y * sw * cn, r1 = r0 + sw * cn, o = y * dw * 3;
    for (let x = 0; x < dw; x++) {
      for (let c = 0; c < 3; c++) {
        const i = 2 * cn * x + chan[c];
        out[o + 3 * x + c] = isFloat
          ? f32(f32(f32(f32(s[r0 + i] + s[r0 + i + cn]) + s[r1 + i]) + s[r1 + i + cn]) * 0.25)
          : (s[r0 + i] + s[r0 + i + cn] + s[r1 + i] + s[r1 + i + cn] + 2) >> 2;
      }
    }
  }
  return {width: dw, height: dh, data: out, layout: outLayout};
}

/**
 * cv2.resize(INTER_LINEAR) of an image to dw x dh. invX, invY are OpenCV's inverse scales:
 * dst / src when a size is given, the factor when fx / fy are. `isFloat`: resize as OpenCV
 * resizes a float32 image (default: when the data is a Float32Array); uint8 values are read
 * as they are, which equals resizing a float32 copy of them.
 */
export function resizeLinear(src, dw, dh, invX, invY, isFloat = src.data instanceof Float32Array) {
  if (exactlyHalf(invX, invY)) return halveArea(src, dw, dh, isFloat);
  // an alpha channel is not resized: the output has the colour channels only
  const layout = layoutOf(src), cn = layout.length, outLayout = layout.replace("A", "");
  const chan = Array.from(outLayout, (ch) => layout.indexOf(ch));
  const sw = src.width, sh = src.height, s = src.data, width = dw * 3;
  const tx = linearTaps(sw, dw, 1 / invX, true, isFloat);
  const ty = linearTaps(sh, dh, 1 / invY, false, isFloat);
  const out = isFloat ? new Float32Array(width * dh) : new Uint8Array(width * dh);
  const row0 = isFloat ? new Float32Array(width) : new Int32Array(width);
  const row1 = isFloat ? new Float32Array(width) : new Int32Array(width);
  const ax = isFloat ? tx.weight : Int32Array.from(tx.weight, fixedPoint);
  // three colour channels, unrolled: this loop is most of the page's own time per photo. A
  // canvas's RGBA pixels are read one 32-bit word per pixel (little-endian: R in the low byte).
  const [c0, c1, c2] = chan, xs = tx.index, last = tx.lastPair;
  const words = cn === 4 && !(s instanceof Float32Array) && s.byteOffset % 4 === 0 &&
    new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? new Uint32Array(s.buffer, s.byteOffset, s.length >> 2) : null;
  const h0 = 8 * c0, h1 = 8 * c1, h2 = 8 * c2;
  let horizontal;
  if (words && isFloat) {
    horizontal = (sy, row) => {
      const base = sy * sw;
      for (let x = 0, o = 0; x < dw; x++, o += 3) {
        const p = words[base + xs[x]];
        if (x < last) {
          const q = words[base + xs[x] + 1], w0 = ax[2 * x], w1 = ax[2 * x + 1];
          row[o] = f32(f32(((p >>> h0) & 255) * w0) + f32(((q >>> h0) & 255) * w1));
          row[o + 1] = f32(f32(((p >>> h1) & 255) * w0) + f32(((q >>> h1) & 255) * w1));
          row[o + 2] = f32(f32(((p >>> h2) & 255) * w0) + f32(((q >>> h2) & 255) * w1));
        } else {
          row[o] = (p >>> h0) & 255; row[o + 1] = (p >>> h1) & 255; row[o + 2] = (p >>> h2) & 255;
        }
      }
    };
  } else if (words) {
    horizontal = (sy, row) => {
      const base = sy * sw;
      for (let x = 0, o = 0; x < dw; x++, o += 3) {
        const p = words[base + xs[x]];
        if (x < last) {
          const q = words[base + xs[x] + 1], w0 = ax[2 * x], w1 = ax[2 * x + 1];
          row[o] = ((p >>> h0) & 255) * w0 + ((q >>> h0) & 255) * w1;
          row[o + 1] = ((p >>> h1) & 255) * w0 + ((q >>> h1) & 255) * w1;
          row[o + 2] = ((p >>> h2) & 255) * w0 + ((q >>> h2) & 255) * w1;
        } else {
          row[o] = ((p >>> h0) & 255) * COEF_SCALE; row[o + 1] = ((p >>> h1) & 255) * COEF_SCALE;
          row[o + 2] = ((p >>> h2) & 255) * COEF_SCALE;
        }
      }
    };
  } else if (isFloat) {
    horizontal = (sy, row) => {
      const base = sy * sw * cn;
      for (let x = 0, o = 0; x < dw; x++, o += 3) {
        const i = base + cn * xs[x];
        if (x < last) {
          const w0 = ax[2 * x], w1 = ax[2 * x + 1], j = i + cn;
          row[o] = f32(f32(s[i + c0] * w0) + f32(s[j + c0] * w1));
          row[o + 1] = f32(f32(s[i + c1] * w0) + f32(s[j + c1] * w1));
          row[o + 2] = f32(f32(s[i + c2] * w0) + f32(s[j + c2] * w1));
        } else {
          row[o] = s[i + c0]; row[o + 1] = s[i + c1]; row[o + 2] = s[i + c2];
        }
      }
    };
  } else {
    horizontal = (sy, row) => {
      const base = sy * sw * cn;
      for (let x = 0, o = 0; x < dw; x++, o += 3) {
        const i = base + cn * xs[x];
        if (x < last) {
          const w0 = ax[2 * x], w1 = ax[2 * x + 1], j = i + cn;
          row[o] = s[i + c0] * w0 + s[j + c0] * w1;
          row[o + 1] = s[i + c1] * w0 + s[j + c1] * w1;
          row[o + 2] = s[i + c2] * w0 + s[j + c2] * w1;
        } else {
          row[o] = s[i + c0] * COEF_SCALE; row[o + 1] = s[i + c1] * COEF_SCALE; row[o + 2] = s[i + c2] * COEF_SCALE;
        }
      }
    };
  }
  let y0prev = -1, y1prev = -1;
  for (let y = 0; y < dh; y++) {
    const y0 = Math.min(Math.max(ty.index[y], 0), sh - 1);
    const y1 = Math.min(Math.max(ty.index[y] + 1, 0), sh - 1);
    if (y0 !== y0prev || y1 !== y1prev) {
      horizontal(y0, row0);
      horizontal(y1, row1);
      y0prev = y0; y1prev = y1;
    }
    const o = y * width;
    if (isFloat) {
      const b0 = ty.weight[2 * y], b1 = ty.weight[2 * y + 1];
      for (let x = 0; x < width; x++) out[o + x] = f32(f32(row0[x] * b0) + f32(row1[x] * b1));
    } else {
      const b0 = fixedPoint(ty.weight[2 * y]), b1 = fixedPoint(ty.weight[2 * y + 1]);
      for (let x = 0; x < width; x++) {
        // OpenCV's SIMD rounding (v_mul_hi of S >> 4 and beta, summed, a rounding shift by
        // 2), on every value: opencv-python 5.0's vertical pass rounds its tail that way too
        // (its scalar formula (S0 * b0 + S1 * b1 + 2^21) >> 22 differed by 1 on 1-in-10 tail
        // values of widths that are no multiple of 16, measured against cv2.resize)
        const v = ((((row0[x] >> 4) * b0) >> 16) + (((row1[x] >> 4) * b1) >> 16) + 2) >> 2;
        out[o + x] = v < 0 ? 0 : v > 255 ? 255 : v;  // Uint8Array would wrap, not saturate
      }
    }
  }
  return {width: dw, height: dh, data: out, layout: outLayout};
}

// src placed at (left, top) of a w x h canvas filled with `fill` (B, G, R); float32 pixels
// when `isFloat`.
function placed(src, w, h, left, top, fill, isFloat) {
  const layout = layoutOf(src), cn = layout.length;
  const out = isFloat ? new Float32Array(w * h * cn) : new Uint8Array(w * h * cn);
  const pixel = Array.from(layout, (ch) => (ch === "A" ? 255 : fill["BGR".indexOf(ch)]));
  for (let i = 0; i < w * h * cn; i += cn) {  // NumPy stores a float fill in uint8 truncated
    for (let c = 0; c < cn; c++) out[i + c] = pixel[c];
  }
  for (let y = 0; y < src.height; y++) {
    out.set(src.data.subarray(y * src.width * cn, (y + 1) * src.width * cn), ((y + top) * w + left) * cn);
  }
  return {width: w, height: h, data: out, layout};
}

// preprocess.pad_short_side: pad the bottom / right edge so neither side scales below a pixel.
function padShortSide(img, ratio, fill, isFloat) {
  const need = Math.ceil(1 / ratio);
  if (Math.min(img.width, img.height) >= need) return img;
  return placed(img, Math.max(img.width, need), Math.max(img.height, need), 0, 0, fill, isFloat);
}

/** The network input size a long-side model gives a width x height image. */
export function longSideSize(width, height, longSide) {
  if (longSide === null || longSide === undefined || longSide === Math.max(width, height)) return [width, height];
  const r = longSide / Math.max(width, height);
  return [Math.max(1, roundHalfEven(width * r)), Math.max(1, roundHalfEven(height * r))];
}

/**
 * Resize and normalise one uint8 image (BGR or RGBA) as deploy.json's `preprocess` says.
 * `longSide`: the long side of a long_side model (null = the original size, undefined = the
 * record's). Returns {tensor (1 x 3 x H x W float32), width, height, toPixels: [sx, sy],
 * offset: [ox, oy]}: a normalised x times sx plus ox is an x in the original image.
 */
export function prepare(spec, image, longSide) {
  const w = image.width, h = image.height, rgb = spec.channel_order === "RGB";
  const fl = spec.resize_dtype === "float32";
  let px = image;
  const fill = [spec.mean[rgb ? 2 : 0], spec.mean[1], spec.mean[rgb ? 0 : 2]];  // BGR
  let fx = 1, fy = 1, left = 0, top = 0;
  if (spec.resize === "fixed") {
    const [tw, th] = spec.size;
    if (tw !== w || th !== h) { fx = tw / w; fy = th / h; px = resizeLinear(px, tw, th, fx, fy, fl); }
  } else if (spec.resize === "letterbox") {  // YOLO's letterbox (auto): pad to a stride multiple
    const side = spec.size[0];
    px = padShortSide(px, side / Math.max(w, h), fill, fl);
    const pw = px.width, ph = px.height, r = Math.min(side / ph, side / pw);
    const nw = roundHalfEven(pw * r), nh = roundHalfEven(ph * r);
    const dw = ((side - nw) % spec.stride) / 2, dh = ((side - nh) % spec.stride) / 2;
    if (nw !== pw || nh !== ph) px = resizeLinear(px, nw, nh, nw / pw, nh / ph, fl);
    top = roundHalfEven(dh - 0.1); left = roundHalfEven(dw - 0.1);
    const bottom = roundHalfEven(dh + 0.1), right = roundHalfEven(dw + 0.1);
    px = placed(px, nw + left + right, nh + top + bottom, left, top, fill, fl);
    fx = fy = r;
  } else if (spec.resize === "square_pad") {  // the image at the top-left of a square
    const side = spec.size[0], s = Math.max(w, h);
    px = placed(px, s, s, 0, 0, fill, fl);
    fx = fy = side / s;
    px = resizeLinear(px, side, side, fx, fy, fl);
  } else {
    const side = longSide === undefined ? spec.long_side : longSide;
    if (side !== null && side !== undefined && side !== Math.max(w, h)) {
      const r = side / Math.max(w, h);
      px = padShortSide(px, r, fill, fl);
      // cv2.resize(fx=r, fy=r) sizes the output round(w * r) x round(h * r)
      px = resizeLinear(px, roundHalfEven(px.width * r), roundHalfEven(px.height * r), r, r, fl);
      fx = fy = r;
    }
  }
  const plane = px.width * px.height, tensor = new Float32Array(3 * plane);
  const inv = f32(1 / spec.std), scale = spec.std !== 1;
  const layout = layoutOf(px), cn = layout.length;
  for (let c = 0; c < 3; c++) {  // network channel c is the image's channel srcC
    const srcC = layout.indexOf(spec.channel_order[c]), mean = f32(spec.mean[c]);
    const planeC = tensor.subarray(c * plane, (c + 1) * plane);
    if (px.data instanceof Float32Array) normalizeFloat(px.data, srcC, cn, mean, inv, scale, planeC);
    else normalizeBytes(px.data, srcC, cn, mean, inv, scale, planeC);
  }
  return {tensor, width: px.width, height: px.height,
          toPixels: [f32(px.width / fx), f32(px.height / fy)],
          offset: [f32(-left / fx), f32(-top / fy)]};
}

// One plane of the network input, (x - mean) * (1 / std) in float32. Two copies of one loop,
// so that each reads one kind of array (bytes or float32) and its loads stay monomorphic.
function normalizeFloat(d, srcC, cn, mean, inv, scale, out) {
  for (let i = 0, j = srcC; i < out.length; i++, j += cn) {
    const v = f32(d[j] - mean);
    out[i] = scale ? f32(v * inv) : v;
  }
}

function normalizeBytes(d, srcC, cn, mean, inv, scale, out) {
  for (let i = 0, j = srcC; i < out.length; i++, j += cn) {
    const v = f32(d[j] - mean);
    out[i] = scale ? f32(v * inv) : v;
  }
}

// ------------------------------------------------------------------------------ priors
const priorCache = new Map();

/** (P x 4) centre-form priors normalised by the input size, in the network's order. */
export function priors(anchors, height, width) {
  const key = `${height}x${width}`;
  if (priorCache.has(key)) return priorCache.get(key);
  const out = [];
  anchors.steps.forEach((step, k) => {
    const rows = Math.ceil(height / step), cols = Math.ceil(width / step);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        for (const s of anchors.min_sizes[k]) {
          // float64 then float32, as priors.py computes them
          const cx = anchors.centers === "grid" ? (j + 0.5) / cols : (j + 0.5) * step / width;
          const cy = anchors.centers === "grid" ? (i + 0.5) / rows : (i + 0.5) * step / height;
          for (const v of [cx, cy, s / width, s / height]) {
            out.push(anchors.clip ? Math.min(1, Math.max(0, f32(v))) : v);
          }
        }
      }
    }
  });
  const result = Float32Array.from(out);
  if (priorCache.size > 64) priorCache.clear();
  priorCache.set(key, result);
  return result;
}

// ------------------------------------------------------------------------------ post-processing
function iou(a, b, off, eps) {
  const w = Math.max(0, f32(f32(Math.min(a[2], b[2]) - Math.max(a[0], b[0])) + off));
  const h = Math.max(0, f32(f32(Math.min(a[3], b[3]) - Math.max(a[1], b[1])) + off));
  const inter = f32(w * h);
  const areaA = f32(f32(f32(a[2] - a[0]) + off) * f32(f32(a[3] - a[1]) + off));
  const areaB = f32(f32(f32(b[2] - b[0]) + off) * f32(f32(b[3] - b[1]) + off));
  return f32(inter / f32(f32(f32(areaA + areaB) - inter) + eps));
}

/** Greedy hard NMS over score-sorted candidates (ties keep prior order); keep-k cut. */
function hardNms(cands, protocol) {
  cands.sort((a, b) => b.score - a.score || a.prior - b.prior);
  if (protocol.candidates > 0 && cands.length > protocol.candidates) cands.length = protocol.candidates;
  const kept = [], alive = new Uint8Array(cands.length).fill(1);
  for (let i = 0; i < cands.length; i++) {
    if (!alive[i]) continue;
    kept.push(cands[i]);
    if (protocol.keep > 0 && kept.length === protocol.keep) break;
    for (let j = i + 1; j < cands.length; j++) {
      if (alive[j] && !(iou(cands[i].box, cands[j].box, protocol.nms_offset, protocol.nms_eps) <= protocol.nms_iou)) alive[j] = 0;
    }
  }
  return kept;
}

/**
 * Network outputs of one image -> faces in original-image pixels, highest score first.
 * loc (P x 4), conf (P x (1 + labels)), landms (P x 10) or null, all Float32Array; `input`
 * is prepare()'s result. Per class of `labels`: candidates over the threshold, NMS within
 * the class; the classes' faces are then merged by score. Boxes are unclipped here.
 */
export function postprocess(loc, conf, landms, pri, cfg, protocol, input) {
  const v0 = f32(cfg.anchors.variances[0]), v1 = f32(cfg.anchors.variances[1]);
  const [sx, sy] = input.toPixels, [ox, oy] = input.offset;
  const nPriors = pri.length / 4, columns = conf.length / nPriors;
  if (loc.length !== 4 * nPriors || !Number.isInteger(columns)) {
    throw new DetectError(`the network gave ${loc.length / 4} predictions for a ${input.width}x${input.height} ` +
                          `input but the anchors of deploy.json number ${nPriors}`);
  }
  if (columns !== cfg.labels.length + 1) {
    throw new DetectError(`the network scores ${columns - 1} classes but deploy.json names ${cfg.labels.length}`);
  }
  const toPixels = (b) => [f32(f32(b[0] * sx) + ox), f32(f32(b[1] * sy) + oy), f32(f32(b[2] * sx) + ox), f32(f32(b[3] * sy) + oy)];
  const inPixels = protocol.nms_space === "pixels";
  const faces = [];
  cfg.labels.forEach((label, k) => {
    const cands = [];
    for (let i = 0; i < nPriors; i++) {
      const score = conf[columns * i + k + 1];
      // Greedy NMS never lets a lower score suppress a higher one: candidates under the final
      // threshold cannot change the result (postprocess.py drops them first too).
      if (!(score > protocol.score_threshold)) continue;
      if (protocol.final_threshold > protocol.score_threshold && !(score >= protocol.final_threshold)) continue;
      const p = 4 * i, l = 4 * i;
      const cx = f32(pri[p] + f32(f32(loc[l] * v0) * pri[p + 2]));
      const cy = f32(pri[p + 1] + f32(f32(loc[l + 1] * v0) * pri[p + 3]));
      const w = f32(pri[p + 2] * f32(Math.exp(f32(loc[l + 2] * v1))));
      const h = f32(pri[p + 3] * f32(Math.exp(f32(loc[l + 3] * v1))));
      let box = [f32(cx - f32(w / 2)), f32(cy - f32(h / 2)), f32(cx + f32(w / 2)), f32(cy + f32(h / 2))];
      if (protocol.clamp_min !== null && protocol.clamp_min !== undefined) {
        box = box.map((v) => Math.min(1, Math.max(f32(protocol.clamp_min), v)));
      }
      cands.push({prior: i, score, box: inPixels ? toPixels(box) : box});
    }
    for (const c of hardNms(cands, protocol)) {
      const face = {box: inPixels ? c.box : toPixels(c.box), score: c.score, label};
      if (landms) {
        const p = 4 * c.prior, l = 10 * c.prior;
        face.landmarks = [0, 1, 2, 3, 4].map((j) => [
          f32(f32(f32(pri[p] + f32(f32(landms[l + 2 * j] * v0) * pri[p + 2])) * sx) + ox),
          f32(f32(f32(pri[p + 1] + f32(f32(landms[l + 2 * j + 1] * v0) * pri[p + 3])) * sy) + oy)]);
      }
      faces.push(face);
    }
  });
  // a stable sort: one class keeps its NMS order, ties between classes keep class order
  return faces.sort((a, b) => b.score - a.score);
}

const round = (v, digits) => Math.round(v * 10 ** digits) / 10 ** digits;

/** One face as `paddleface detect --json` writes it: box clipped to the image, 3 decimals. */
export function faceJson(face, width, height) {
  const lim = [width, height, width, height];
  const out = {box: face.box.map((v, k) => round(Math.min(lim[k], Math.max(0, v)), 3)),
               score: round(face.score, 5), label: face.label};
  if (face.landmarks) out.landmarks = face.landmarks.map(([x, y]) => [round(x, 3), round(y, 3)]);
  return out;
}

// ------------------------------------------------------------------------------ images in
function sniffSize(bytes) {  // [width, height] from a PNG or JPEG header, or null
  const u = new Uint8Array(bytes);
  const dv = new DataView(u.buffer, u.byteOffset, u.byteLength);
  if (u.length >= 24 && u[0] === 0x89 && u[1] === 0x50 && u[2] === 0x4e && u[3] === 0x47) {
    return [dv.getUint32(16), dv.getUint32(20)];
  }
  if (u.length >= 4 && u[0] === 0xff && u[1] === 0xd8) {
    let i = 2;
    while (i + 9 < u.length) {
      if (u[i] !== 0xff) { i++; continue; }
      const marker = u[i + 1];
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0xff) { i += marker === 0xff ? 1 : 2; continue; }
      const len = dv.getUint16(i + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return [dv.getUint16(i + 7), dv.getUint16(i + 5)];
      }
      i += 2 + len;
    }
  }
  return null;
}

function checkSourcePixels(width, height) {
  if (width * height > MAX_SOURCE_PIXELS) {
    throw new DetectError(`the picture is ${width}x${height} (${Math.round(width * height / 1e6)} M pixels), over this ` +
                          `page's limit of ${MAX_SOURCE_PIXELS / 1e6} M pixels (decoding it would take ` +
                          `${Math.round(width * height * 4 / 1e6)} MB); make it smaller first`);
  }
}

/**
 * How a file becomes pixels: as stored, as `paddleface detect` reads it (OpenCV's
 * IMREAD_UNCHANGED): no colour-space conversion, no EXIF rotation, alpha not premultiplied.
 * The page draws photos with the same options, so the boxes fall on the faces shown.
 */
export const BITMAP_OPTIONS = {colorSpaceConversion: "none", premultiplyAlpha: "none",
                               imageOrientation: "none"};

async function blobToBitmap(blob, name) {
  const head = await blob.slice(0, 256 * 1024).arrayBuffer();
  const size = sniffSize(head);
  if (size) checkSourcePixels(size[0], size[1]);
  try {
    return await createImageBitmap(blob, BITMAP_OPTIONS);
  } catch (e) {
    throw new DetectError(`${name ? `${name}: ` : ""}not an image this browser can decode ` +
                          "(corrupt, truncated or not a picture)");
  }
}

/**
 * RGBA pixels of an image URL, Blob/File, ImageBitmap, ImageData, <img>, <video> or
 * <canvas>: {width, height, rgba (Uint8ClampedArray)}.
 */
export async function readPixels(source) {
  if (typeof ImageData !== "undefined" && source instanceof ImageData) {
    return {width: source.width, height: source.height, rgba: source.data};
  }
  let bitmap = source, owned = false;
  if (typeof source === "string" || source instanceof URL) {
    let r;
    try { r = await fetch(source); } catch (e) { throw new DetectError(`${source}: could not be fetched (${e.message})`); }
    if (!r.ok) throw new DetectError(`${source}: HTTP ${r.status}`);
    bitmap = await blobToBitmap(await r.blob(), String(source));
    owned = true;
  } else if (source instanceof Blob) {
    bitmap = await blobToBitmap(source);
    owned = true;
  }
  const width = bitmap.videoWidth || bitmap.naturalWidth || bitmap.width;
  const height = bitmap.videoHeight || bitmap.naturalHeight || bitmap.height;
  if (!width || !height) throw new DetectError("the picture has no pixels (a video not playing yet, or an empty image)");
  try {
    checkSourcePixels(width, height);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext("2d", {willReadFrequently: true});
    ctx.drawImage(bitmap, 0, 0);  // same size: no scaling, the decoded pixels as they are
    return {width, height, rgba: ctx.getImageData(0, 0, width, height).data};
  } finally {
    if (owned) bitmap.close();
  }
}

// ------------------------------------------------------------------------------ the detector
/**
 * A detector for the model in `baseUrl` (deploy.json + model.onnx), run by the onnxruntime-web
 * module `ort`. Options: threads (WASM threads; more than 1 needs cross-origin isolation).
 */
export async function createDetector(ort, baseUrl, {threads} = {}) {
  const base = new URL(baseUrl, location.href);
  const cfgResponse = await fetch(new URL("deploy.json", base));
  if (!cfgResponse.ok) throw new DetectError(`deploy.json: HTTP ${cfgResponse.status}`);
  const cfg = readConfig(await cfgResponse.json());
  const isolated = globalThis.crossOriginIsolated === true;
  ort.env.wasm.numThreads = isolated ? Math.max(1, threads || Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  const modelBytes = new Uint8Array(await (await fetch(new URL("model.onnx", base))).arrayBuffer());
  const session = await ort.InferenceSession.create(modelBytes, {executionProviders: ["wasm"],
                                                                  graphOptimizationLevel: "all"});
  const inputName = session.inputNames[0];
  let busy = Promise.resolve();  // one run at a time: a session is not re-entrant

  async function run(input) {
    const feed = {[inputName]: new ort.Tensor("float32", input.tensor, [1, 3, input.height, input.width])};
    const out = await session.run(feed);
    return cfg.outputs.map((name) => (out[name] ? out[name].data : null));
  }

  /**
   * Faces in one picture, as one image of `paddleface detect --json`:
   * {width, height, faces: [{box: [x1, y1, x2, y2], score, label, landmarks?}], timings}.
   * Options: threshold (final score threshold), longSide (long_side models; null = original).
   */
  async function detect(source, {threshold, longSide} = {}) {
    const job = busy.then(async () => {
      const t0 = performance.now();
      const pixels = await readPixels(source);
      const t1 = performance.now();
      // alpha ignored, as OpenCV's BGRA -> BGR
      const image = {width: pixels.width, height: pixels.height, data: pixels.rgba, layout: "RGBA"};
      if (image.width < 2 && image.height < 2) {
        throw new DetectError(`the picture is ${image.width}x${image.height} pixels: too small to hold a face`);
      }
      const ls = cfg.preprocess.resize === "long_side" ? longSide : undefined;
      if (cfg.preprocess.resize === "long_side") {
        const side = ls === undefined ? cfg.preprocess.long_side : ls;
        const [iw, ih] = longSideSize(image.width, image.height, side);
        if (iw * ih > MAX_INPUT_PIXELS) {
          throw new DetectError(`the network input would be ${iw}x${ih} (${Math.round(iw * ih / 1e6)} M pixels), over ` +
                                `the limit of ${(MAX_INPUT_PIXELS / 1e6).toFixed(1)} M pixels; choose a smaller long side`);
        }
      }
      const input = prepare(cfg.preprocess, image, ls);
      const t2 = performance.now();
      const [loc, conf, landms] = await run(input);
      const t3 = performance.now();
      let protocol = cfg.detection;
      if (threshold !== undefined && threshold !== null) {
        protocol = {...protocol, final_threshold: threshold,
                    score_threshold: Math.min(protocol.score_threshold, threshold)};
      }
      const pri = priors(cfg.anchors, input.height, input.width);
      const faces = postprocess(loc, conf, landms || null, pri, cfg, protocol, input)
        .map((f) => faceJson(f, image.width, image.height));
      const t4 = performance.now();
      return {width: image.width, height: image.height, faces,
              timings: {decode_ms: t1 - t0, preprocess_ms: t2 - t1, network_ms: t3 - t2,
                        postprocess_ms: t4 - t3, total_ms: t4 - t0}};
    });
    busy = job.catch(() => {});
    return job;
  }

  /** The network alone on a zero input of the size `image` would get (for benchmarks). */
  async function networkOnly(width, height, longSide) {
    const input = prepare(cfg.preprocess, {width, height, data: new Uint8Array(width * height * 3)},
                          cfg.preprocess.resize === "long_side" ? longSide : undefined);
    const t0 = performance.now();
    await run(input);
    return performance.now() - t0;
  }

  return {config: cfg, detect, networkOnly, threads: ort.env.wasm.numThreads, crossOriginIsolated: isolated};
}

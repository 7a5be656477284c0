// The page around the detector: photos from a file, frames from the camera, the threshold and
// long side, drawing. It exposes the detector as window.paddleface for scripts and tests:
//   await window.paddleface.ready;                     // the model is loaded
//   const r = await window.paddleface.detect(source);  // URL, Blob, ImageBitmap, ImageData, ...
// r is {width, height, faces: [{box: [x1, y1, x2, y2], score, label, landmarks?}], timings}.
// URL parameters: ?threads=N (WASM threads, needs cross-origin isolation).
import * as ort from "./ort/ort.wasm.min.mjs";
import {BITMAP_OPTIONS, createDetector, DetectError} from "./detector.mjs";

// eyes, nose, mouth corners: the colours paddleface.draw uses (here RGB)
const LANDMARK_COLORS = ["#ff0000", "#ffff00", "#ff00ff", "#00ff00", "#0000ff"];
const $ = (id) => document.getElementById(id);
const canvas = $("canvas"), ctx = canvas.getContext("2d");
const params = new URLSearchParams(location.search);
let detector = null, current = null, stream = null, serial = 0;

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
  if (isError) document.body.dataset.state = "error";
}

function settings() {
  const threshold = Number($("threshold").value);
  const v = $("long-side").value;
  const longSide = v === "" ? undefined : v === "origin" ? null : Number(v);
  return {threshold, longSide};
}

// Draws the picture and every face; returns how many boxes it drew (kept in data-faces).
function draw(picture, result) {
  canvas.width = result.width;
  canvas.height = result.height;
  if (picture instanceof ImageData) ctx.putImageData(picture, 0, 0);
  else if (picture) ctx.drawImage(picture, 0, 0, result.width, result.height);
  const line = Math.max(2, Math.round(Math.max(result.width, result.height) / 400));
  for (const f of result.faces) {
    const [x1, y1, x2, y2] = f.box;
    ctx.lineWidth = line;
    ctx.strokeStyle = "#00e000";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = "#ffffff";
    ctx.font = `${6 * line}px sans-serif`;
    const text = detector.config.labels.length > 1 ? `${f.label} ${f.score.toFixed(2)}` : f.score.toFixed(2);
    ctx.fillText(text, x1, Math.max(6 * line, y1 - line));
    (f.landmarks || []).forEach(([x, y], i) => {
      ctx.fillStyle = LANDMARK_COLORS[i];
      ctx.beginPath();
      ctx.arc(x, y, line + 1, 0, 2 * Math.PI);
      ctx.fill();
    });
  }
  canvas.dataset.faces = String(result.faces.length);
  return result.faces.length;
}

function listFaces(faces) {
  const rows = faces.map((f, i) => `<tr><td>${i + 1}</td><td>${f.label}</td><td>${f.score.toFixed(3)}</td>` +
    `<td>${f.box.map((v) => v.toFixed(0)).join(", ")}</td></tr>`);
  $("faces").innerHTML = faces.length ?
    `<tr><th>#</th><th>class</th><th>score</th><th>box x1, y1, x2, y2</th></tr>${rows.join("")}` : "";
}

function describe(result, what) {
  const n = result.faces.length, t = result.timings;
  return `${n} face${n === 1 ? "" : "s"} · ${what} · ${result.width}x${result.height} · ` +
    `detect ${t.total_ms.toFixed(1)} ms (network ${t.network_ms.toFixed(1)} ms)`;
}

function explain(e) {
  return e instanceof DetectError ? e.message : `${e.name || "Error"}: ${e.message}`;
}

// A photo chosen or dropped: decode it once, detect, draw. A bad file gets a message and
// leaves the page as it was (the previous photo stays usable for threshold changes).
async function usePhoto(file) {
  const mine = ++serial;
  document.body.dataset.state = "busy";
  setStatus(`Detecting in ${file.name || "the photo"}…`);
  try {
    const result = await detector.detect(file, settings());
    const bitmap = await createImageBitmap(file, BITMAP_OPTIONS);
    if (mine !== serial) return;
    if (current && current.bitmap) current.bitmap.close();
    current = {file, bitmap};
    draw(bitmap, result);
    listFaces(result.faces);
    setStatus(describe(result, file.name || "photo"));
    document.body.dataset.state = "done";
  } catch (e) {
    if (mine === serial) setStatus(`${file.name || "The file"}: ${explain(e)}`, true);
  }
}

async function redetect() {
  if (stream || !current) return;
  await usePhoto(current.file);
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("The camera is not available: this page needs https or localhost for it", true);
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: true});
  } catch (e) {
    stream = null;
    const why = e.name === "NotAllowedError" ? "access was denied" :
      e.name === "NotFoundError" ? "no camera was found" : e.message;
    setStatus(`The camera is not available: ${why}. Photos still work.`, true);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  $("camera").hidden = true;
  $("stop").hidden = false;
  document.body.dataset.camera = "on";
  let frames = 0;
  const loop = async () => {
    if (!stream) return;
    try {
      const result = await detector.detect(video, settings());
      if (!stream) return;
      draw(video, result);
      frames += 1;
      canvas.dataset.frames = String(frames);
      setStatus(describe(result, `camera frame ${frames}`));
    } catch (e) {
      setStatus(`Camera frame: ${explain(e)}`, true);
    }
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
}

function stopCamera() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("camera").hidden = false;
  $("stop").hidden = true;
  document.body.dataset.camera = "off";
}

async function main() {
  const threads = params.has("threads") ? Number(params.get("threads")) : undefined;
  detector = await createDetector(ort, "./", {threads});
  const cfg = detector.config;
  $("model-name").textContent = cfg.model;
  $("threshold").value = cfg.detection.final_threshold || cfg.detection.score_threshold;
  $("threshold-value").value = Number($("threshold").value).toFixed(2);
  $("long-side").disabled = cfg.preprocess.resize !== "long_side";
  $("runtime").textContent = `onnxruntime-web ${ort.env.versions.web} (WASM SIMD, ` +
    `${detector.threads} thread${detector.threads === 1 ? "" : "s"}` +
    `${detector.crossOriginIsolated ? "" : "; not cross-origin isolated, so one thread"})`;
  if (params.get("from") === "serve") $("server-link").hidden = false;
  setStatus("Choose a photo, drop one here, or use the camera.");
  document.body.dataset.state = "ready";
  return detector;
}

const ready = main().catch((e) => {
  setStatus(`The model could not be loaded: ${explain(e)}`, true);
  throw e;
});
window.paddleface = {
  ready: ready.then(() => true),
  detect: async (source, options) => { await ready; return detector.detect(source, options); },
  get config() { return detector && detector.config; },
  get threads() { return detector && detector.threads; },
  networkOnly: async (w, h, longSide) => { await ready; return detector.networkOnly(w, h, longSide); },
};

$("drop").addEventListener("click", () => $("file").click());
$("drop").addEventListener("keydown", (e) => { if (e.key === "Enter") $("file").click(); });
$("file").addEventListener("change", () => {
  if ($("file").files[0]) usePhoto($("file").files[0]);
  $("file").value = "";  // choosing the same file again is a change too
});
for (const ev of ["dragenter", "dragover"]) {
  $("drop").addEventListener(ev, (e) => { e.preventDefault(); $("drop").classList.add("over"); });
}
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  if (e.dataTransfer.files[0]) usePhoto(e.dataTransfer.files[0]);
});
$("threshold").addEventListener("input", () => {
  $("threshold-value").value = Number($("threshold").value).toFixed(2);
});
$("threshold").addEventListener("change", redetect);
$("long-side").addEventListener("change", redetect);
$("camera").addEventListener("click", startCamera);
$("stop").addEventListener("click", stopCamera);

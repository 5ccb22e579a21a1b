// The StreamGuard page: publish a camera or a local video file, draw each tracked face's verdict over
// the video, and log level changes. Query parameters: ?whip=URL (another WHIP endpoint), ?stream_id=ID.
import { publish } from "./streamguard.js";

const STALE_MS = 1500; // a track with no verdict for this long is drawn no more (the face left or was lost)
const LOG_LIMIT = 200;
const COLORS = { clear: "#2fbf71", suspicious: "#f59e0b", alert: "#ef4444" };

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("controls"),
  file: $("file"),
  streamId: $("stream-id"),
  token: $("token"),
  start: $("start"),
  stop: $("stop"),
  status: $("status"),
  message: $("message"),
  video: $("video"),
  overlay: $("overlay"),
  placeholder: $("placeholder"),
  tracks: document.querySelector("#tracks tbody"),
  noTracks: $("no-tracks"),
  log: $("log"),
  counters: $("counters"),
  endpoint: $("endpoint"),
};

const params = new URLSearchParams(location.search);
const whipBase = new URL(params.get("whip") || "whip", document.baseURI);
if (params.get("stream_id")) ui.streamId.value = params.get("stream_id");
ui.endpoint.textContent = whipBase.href;

let session = null; // {handle, stream, ownsTracks} while publishing
let starting = null; // {cancelled} while start() waits for the camera or the service
let tracks = new Map(); // track_id -> {verdict, seenAt (performance.now()), row}
let verdictCount = 0;
let stopping = false;
let drawing = false; // one animation-frame loop at a time

// ---- status and messages --------------------------------------------------------------------------

function setStatus(state, text = state) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  const busy = state === "starting" || state === "connecting" || state === "live";
  ui.start.disabled = busy;
  ui.stop.disabled = !busy;
  for (const input of ui.form.querySelectorAll("input")) input.disabled = busy;
  if (!busy) ui.file.disabled = sourceKind() !== "file";
}

/** A plain-words headline, and optionally the technical detail (the HTTP answer, the browser's error) below it. */
function showMessage(text, detail = "") {
  ui.message.replaceChildren(text);
  if (detail) {
    const small = document.createElement("small");
    small.textContent = detail;
    ui.message.append(small);
  }
  ui.message.hidden = !text;
}

function sourceKind() {
  return ui.form.elements.source.value;
}

for (const radio of ui.form.elements.source) {
  radio.addEventListener("change", () => (ui.file.disabled = sourceKind() !== "file"));
}

// ---- sources ------------------------------------------------------------------------------------------

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new UserError(
      `This page cannot use a camera: browsers allow it only on https:// or http://localhost pages (this is ${location.origin}). ` +
        "Open it that way, or publish a video file instead.",
    );
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  } catch (err) {
    throw new UserError(cameraProblem(err));
  }
}

function cameraProblem(err) {
  switch (err.name) {
    case "NotAllowedError":
      return "Camera access was denied. Allow the camera for this page (the camera icon in the address bar or the site settings) and press Start again, or publish a video file instead.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found. Connect one and press Start again, or publish a video file instead.";
    case "NotReadableError":
    case "AbortError":
      return "The camera could not be started; another application may be using it.";
    default:
      return `The camera could not be opened (${err.name}: ${err.message}).`;
  }
}

async function openFile() {
  const file = ui.file.files[0];
  if (!file) throw new UserError("Choose a video file first.");
  const video = ui.video;
  video.srcObject = null;
  if (video.src.startsWith("blob:")) URL.revokeObjectURL(video.src); // the previous file
  video.src = URL.createObjectURL(file);
  video.loop = true;
  video.muted = true;
  try {
    await video.play();
  } catch (err) {
    throw new UserError(`This browser cannot play ${file.name} (${err.message}).`);
  }
  // captureStream() re-encodes whatever the element shows; its video track can appear a moment later.
  const stream = video.captureStream();
  if (stream.getVideoTracks().length === 0) {
    await new Promise((resolve) => stream.addEventListener("addtrack", resolve, { once: true }));
  }
  return stream;
}

class UserError extends Error {}

// ---- start / stop -------------------------------------------------------------------------------------

async function start() {
  showMessage("");
  if (!ui.streamId.reportValidity()) return;
  resetVerdicts();
  setStatus("starting", "starting…");
  const attempt = (starting = { cancelled: false });
  const isCamera = sourceKind() === "camera";
  let stream;
  try {
    stream = isCamera ? await openCamera() : await openFile();
  } catch (err) {
    starting = null;
    if (!attempt.cancelled) fail(err);
    return;
  }
  if (attempt.cancelled) {
    releaseSource(stream, isCamera);
    return;
  }
  if (isCamera) {
    ui.video.removeAttribute("src");
    ui.video.srcObject = stream;
    ui.video.play().catch(() => {}); // muted autoplay is allowed; a refusal only leaves the preview still
  }
  ui.placeholder.hidden = true;

  setStatus("connecting", "connecting…");
  const whipUrl = new URL(whipBase);
  whipUrl.searchParams.set("stream_id", ui.streamId.value);
  let handle;
  try {
    handle = await publish(stream, whipUrl.href, onVerdict, { token: ui.token.value.trim() || undefined });
  } catch (err) {
    starting = null;
    releaseSource(stream, isCamera);
    if (!attempt.cancelled) fail(err);
    return;
  }
  starting = null;
  if (attempt.cancelled) {
    // Stop was pressed while the service was answering.
    releaseSource(stream, isCamera);
    handle.stop();
    return;
  }
  session = { handle, stream, ownsTracks: isCamera };
  stopping = false;
  watchConnection(handle);
  if (!drawing) requestAnimationFrame(drawLoop);
}

function watchConnection({ pc, channel }) {
  const current = () => !stopping && session?.handle.pc === pc;
  const onState = () => {
    if (!current()) return;
    switch (pc.connectionState) {
      case "connected":
        setStatus("live");
        break;
      case "disconnected":
        setStatus("connecting", "connection interrupted, retrying…");
        break;
      case "failed":
        showMessage(
          "The WebRTC connection to the service failed: no network path for the media.",
          "UDP may be blocked, or the service's ICE candidates are not reachable from this browser.",
        );
        stop("error", "failed");
        break;
    }
  };
  pc.addEventListener("connectionstatechange", onState);
  onState(); // it may have connected while publish() was finishing
  // The service closes the channel when it ends the session (DELETE from elsewhere, timeout, shutdown).
  channel.addEventListener("close", () => {
    if (!current()) return;
    showMessage("The service ended the session.");
    stop("stopped", "ended by the service", { deleteSession: false }); // it is gone already: a DELETE would 404
  });
}

async function stop(state = "stopped", text = state, { deleteSession = true } = {}) {
  if (!session) {
    if (starting) {
      starting.cancelled = true; // start() cleans up when its await returns
      setStatus(state, text);
    }
    return;
  }
  stopping = true;
  const { handle, stream, ownsTracks } = session;
  session = null;
  setStatus(state, text);
  releaseSource(stream, ownsTracks);
  if (deleteSession) await handle.stop();
  else handle.pc.close();
}

function releaseSource(stream, ownsTracks) {
  if (ownsTracks) {
    for (const track of stream.getTracks()) track.stop(); // turns the camera light off
    ui.video.srcObject = null;
    ui.placeholder.hidden = false;
  } else {
    ui.video.pause(); // a file keeps showing its last frame
  }
}

function fail(err) {
  if (err instanceof UserError) showMessage(err.message);
  else showMessage(headline(err), err.message);
  setStatus("error", "not connected");
}

function headline(err) {
  if (err.name !== "WhipError") return "Something unexpected went wrong.";
  if (err.status === 0) return `Cannot reach the StreamGuard service at ${whipBase.href}. Is it running, and is the address right?`;
  if (err.status === 401) return "The service needs an access token: enter it in the Token field.";
  if (err.status === 409) return `Stream id "${ui.streamId.value}" is already being published: pick another one.`;
  if (err.status === null) return "The browser could not set up the stream.";
  return "The service refused the stream.";
}

ui.form.addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
ui.stop.addEventListener("click", () => stop());
addEventListener("pagehide", () => session?.handle.stop()); // frees the session now rather than after the service's timeout

// ---- verdicts -----------------------------------------------------------------------------------------

function onVerdict(v) {
  verdictCount += 1;
  const known = tracks.get(v.track_id);
  if (!known) {
    logEvent(v, `track ${v.track_id} appeared: ${v.level} (${v.smoothed.toFixed(2)})`);
  } else if (v.changed || known.verdict.level !== v.level) {
    logEvent(v, `track ${v.track_id}: ${known.verdict.level} → ${v.level} (${v.smoothed.toFixed(2)})`);
  }
  const entry = known ?? { row: addTrackRow(v.track_id) };
  entry.verdict = v;
  entry.seenAt = performance.now();
  tracks.set(v.track_id, entry);
  renderTrackRow(entry);
  ui.counters.textContent = `${verdictCount} verdicts · ${frameSize()}`;
}

function addTrackRow(trackId) {
  const row = document.createElement("tr");
  row.dataset.track = trackId;
  for (let i = 0; i < 5; i++) row.append(document.createElement("td"));
  ui.tracks.append(row);
  ui.noTracks.hidden = true;
  return row;
}

function renderTrackRow({ verdict: v, row }) {
  const [track, level, smoothed, score, latency] = row.children;
  row.dataset.level = v.level;
  row.dataset.box = JSON.stringify(v.box); // frame pixels, for debugging and tests
  row.classList.remove("gone");
  track.textContent = `track ${v.track_id}`;
  level.innerHTML = "";
  level.append(badge(v.level));
  smoothed.textContent = v.smoothed.toFixed(2);
  score.textContent = v.score.toFixed(2);
  latency.textContent = v.latency_ms?.total != null ? `${Math.round(v.latency_ms.total)} ms` : "–";
}

function badge(level) {
  const span = document.createElement("span");
  span.className = `badge ${level}`;
  span.textContent = level;
  return span;
}

function logEvent(v, text) {
  const item = document.createElement("li");
  item.dataset.level = v.level;
  const time = document.createElement("time");
  time.textContent = new Date(v.timestamp_ms).toLocaleTimeString();
  item.append(time, " ", text);
  ui.log.prepend(item); // newest first
  while (ui.log.children.length > LOG_LIMIT) ui.log.lastElementChild.remove();
}

function resetVerdicts() {
  tracks = new Map();
  verdictCount = 0;
  ui.tracks.innerHTML = "";
  ui.noTracks.hidden = false;
  ui.counters.textContent = "";
}

function frameSize() {
  const { videoWidth: w, videoHeight: h } = ui.video;
  return w ? `${w}×${h}` : "";
}

// ---- overlay ------------------------------------------------------------------------------------------

function drawLoop() {
  drawing = Boolean(session);
  if (drawing) {
    drawOverlay();
    requestAnimationFrame(drawLoop);
  } else {
    clearOverlay();
  }
}

function clearOverlay() {
  const ctx = ui.overlay.getContext("2d");
  ctx.clearRect(0, 0, ui.overlay.width, ui.overlay.height);
}

function drawOverlay() {
  const { video, overlay } = ui;
  const dpr = window.devicePixelRatio || 1;
  const width = video.clientWidth;
  const height = video.clientHeight;
  if (overlay.width !== Math.round(width * dpr) || overlay.height !== Math.round(height * dpr)) {
    overlay.width = Math.round(width * dpr);
    overlay.height = Math.round(height * dpr);
  }
  const ctx = overlay.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (!video.videoWidth) return;

  // Boxes come in the video's intrinsic pixels; the element shows it scaled with object-fit: contain.
  const scale = Math.min(width / video.videoWidth, height / video.videoHeight);
  const offsetX = (width - video.videoWidth * scale) / 2;
  const offsetY = (height - video.videoHeight * scale) / 2;
  const now = performance.now();
  ctx.font = "600 13px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const entry of tracks.values()) {
    const stale = now - entry.seenAt > STALE_MS;
    entry.row.classList.toggle("gone", stale);
    if (stale) continue;
    const v = entry.verdict;
    const [x0, y0, x1, y1] = v.box;
    const x = offsetX + x0 * scale;
    const y = offsetY + y0 * scale;
    const w = (x1 - x0) * scale;
    const h = (y1 - y0) * scale;
    const color = COLORS[v.level] ?? "#ffffff";
    ctx.lineWidth = 3;
    ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);

    const label = `track ${v.track_id}: ${v.smoothed.toFixed(2)}`;
    const labelWidth = ctx.measureText(label).width + 10;
    const labelY = y >= 20 ? y : y + h + 20; // above the box, or below it at the top edge
    ctx.fillStyle = color;
    ctx.fillRect(x - 1.5, labelY - 20, labelWidth, 20);
    ctx.fillStyle = "#0b0f14";
    ctx.fillText(label, x + 3.5, labelY - 4);
  }
}

setStatus("idle", "ready");

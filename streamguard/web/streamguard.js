// StreamGuard browser client: publish a MediaStream to the service over WHIP (RFC 9725) and receive
// its verdicts on a WebRTC data channel. A plain ES module, no build step, no dependencies.
//
//   import { publish } from "./streamguard.js";
//   const handle = await publish(stream, "/whip?stream_id=me", (verdict) => console.log(verdict), { token });
//   ...
//   await handle.stop();

/**
 * Publishing failed. `status` is the HTTP status of a refusal (with `error` and `detail` from the service's
 * JSON error body), 0 when no HTTP answer came at all (network error), and null when it failed in the browser.
 */
export class WhipError extends Error {
  constructor(message, { status = null, error = "", detail = "" } = {}) {
    super(message);
    this.name = "WhipError";
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

const ICE_GATHERING_TIMEOUT_MS = 5000;

/**
 * Publish the video track(s) of `stream` to `whipUrl` and call `onVerdict(event)` for every verdict.
 * Resolves to `{pc, channel, sessionUrl, stop()}` once the service has accepted the offer (media starts
 * flowing shortly after; watch `pc.connectionState`). Throws a WhipError with a readable message when that fails.
 *
 * Options: `token` (sent as `Authorization: Bearer`), `iceServers` (none by default: the service
 * sends its own candidates in the answer, and a default public STUN server would leak addresses).
 */
export async function publish(stream, whipUrl, onVerdict, { token, iceServers = [] } = {}) {
  const videoTracks = stream.getVideoTracks();
  if (videoTracks.length === 0) throw new WhipError("the stream has no video track to publish");
  const url = new URL(whipUrl, document.baseURI).href;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};

  const pc = new RTCPeerConnection({ iceServers });
  try {
    // The service only learns about a data channel that exists in the offer, so create it first.
    const channel = pc.createDataChannel("verdicts");
    channel.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        console.warn("streamguard: ignoring a non-JSON data channel message", message.data);
        return;
      }
      onVerdict(event);
    };

    for (const track of videoTracks) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });

    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringComplete(pc); // no trickle ICE: the offer carries every candidate

    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
    } catch (err) {
      throw new WhipError(`no answer from ${url} (${err.message})`, { status: 0 });
    }
    if (response.status !== 201) throw await httpError("publishing failed", url, response);

    // Location names the session; it may be relative to the WHIP endpoint.
    const location = response.headers.get("Location");
    const sessionUrl = location ? new URL(location, response.url).href : null;
    const answer = await response.text();
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: answer });
    } catch (err) {
      if (sessionUrl) fetch(sessionUrl, { method: "DELETE", headers }).catch(() => {}); // don't leave it to the reaper
      throw new WhipError(`the service's SDP answer was rejected by the browser: ${err.message}`);
    }
    // Verdict boxes are in the pixels of the frames the service decodes; keep the encoder from
    // downscaling under load so they stay in the source's (the <video>'s intrinsic) coordinates.
    await Promise.all(pc.getSenders().map(keepResolution));
    return makeHandle(pc, channel, sessionUrl, headers);
  } catch (err) {
    pc.close();
    throw err;
  }
}

function makeHandle(pc, channel, sessionUrl, headers) {
  let stopped = null;
  return {
    pc,
    channel, // the "verdicts" data channel; it closes when the service ends the session
    sessionUrl,
    /** End the session on the service (DELETE) and close the peer connection; safe to call twice. */
    stop() {
      stopped ??= (async () => {
        try {
          // keepalive lets the DELETE finish even when stop() runs while the page is being unloaded.
          if (sessionUrl) await fetch(sessionUrl, { method: "DELETE", headers, keepalive: true });
        } catch {
          // Unreachable service: the session ends there anyway once the connection drops.
        } finally {
          pc.close();
        }
      })();
      return stopped;
    },
  };
}

async function httpError(what, url, response) {
  let error = response.statusText;
  let detail = "";
  try {
    const body = await response.json(); // the service's errors are {"error": ..., "detail": ...}
    error = body.error ?? error;
    detail = body.detail ?? "";
  } catch {
    // not JSON (a proxy's HTML page, say): the status line is all there is
  }
  const message = `${what}: ${url} answered ${response.status} ${error}${detail ? ` (${detail})` : ""}`;
  return new WhipError(message, { status: response.status, error, detail });
}

function iceGatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    // A host with an unreachable STUN/TURN server can take long; after the timeout the offer goes
    // out with what has been gathered so far.
    const timer = setTimeout(done, ICE_GATHERING_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
  });
}

async function keepResolution(sender) {
  try {
    const params = sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    await sender.setParameters(params);
  } catch (err) {
    console.warn("streamguard: cannot pin the send resolution; boxes may be off if the browser downscales", err);
  }
}

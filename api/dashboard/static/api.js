// The dashboard's door to the /v1 API: the token (kept for the browser session), JSON calls
// with one error type, and server-sent events read through fetch (EventSource cannot send an
// Authorization header).

const TOKEN_KEY = "cnnlab-token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail.message || `HTTP ${status}`);
    this.status = status;
    this.type = detail.type || "http_error";
    this.field = detail.field;
  }
}

// Called with the error when the server rejects the token (the app then asks for a new one).
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function headers(extra = {}) {
  return { Authorization: `Bearer ${token.get() || ""}`, ...extra };
}

async function check(response) {
  if (response.ok) return response;
  let detail = {};
  try {
    detail = (await response.json()).detail || {};
  } catch {
    detail = { message: `${response.status} ${response.statusText}` };
  }
  if (typeof detail === "string") detail = { message: detail };
  const error = new ApiError(response.status, detail);
  if (response.status === 401) onUnauthorized(error);
  throw error;
}

export async function request(method, path, { json, body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { type: "network", message: "the server cannot be reached" });
  }
  return check(response);
}

export const get = async (path, opts) => (await request("GET", path, opts)).json();
export const post = async (path, json) => (await request("POST", path, { json })).json();

export async function download(path, filename) {
  const blob = await (await request("GET", path)).blob();
  const url = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Follow a server-sent event stream (a job's or a search's `/events`) until the server closes it
// after the final status event, or `signal` aborts; onEvent(type, data) per event. A dropped
// connection is resumed with Last-Event-ID after the server's retry delay.
export async function follow(path, onEvent, signal) {
  let lastId = null;
  let retryMs = 2000;
  let finished = false; // the last status event said the job or search has ended
  while (!signal.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastId) extra["Last-Event-ID"] = lastId;
      const response = await check(await fetch(path, { headers: headers(extra), signal }));
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", event = "message", data = [], id = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, "");
          buffer = buffer.slice(nl + 1);
          if (line === "") {
            if (data.length) {
              const payload = JSON.parse(data.join("\n"));
              if (id !== null) lastId = id;
              if (event === "status") finished = Boolean(payload.finished_at);
              onEvent(event, payload);
            }
            event = "message";
            data = [];
          } else if (!line.startsWith(":")) {
            const at = line.indexOf(":");
            const field = at < 0 ? line : line.slice(0, at);
            const val = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
            if (field === "event") event = val;
            else if (field === "data") data.push(val);
            else if (field === "id") id = val;
            else if (field === "retry" && /^\d+$/.test(val)) retryMs = Number(val);
          }
        }
      }
      if (finished) return; // the server closes the stream only after the final status
    } catch (err) {
      if (signal.aborted || err.name === "AbortError") return;
      if (err instanceof ApiError && err.status && err.status !== 503) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

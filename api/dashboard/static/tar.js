// An uncompressed tar archive (POSIX ustar, with pax headers where ustar cannot say it) of
// files the browser holds, as a Blob made of parts: each file's bytes stay in its own File
// (read from disk as the Blob is sent), only the 512-byte headers and the padding are new.
// Paths are UTF-8: an ASCII path that fits goes in ustar's name (and prefix) fields; a longer or
// non-ASCII one, or a file of 8 GiB or more, gets a pax extended header before it.

const BLOCK = 512;
const utf8 = new TextEncoder();
const MAX_OCTAL_SIZE = 8 ** 11 - 1; // what ustar's 12-byte size field can hold

// `value` as `width - 1` octal digits and a NUL, the way ustar numbers are written.
function octal(value, width) {
  return value.toString(8).padStart(width - 1, "0") + "\0";
}

// ASCII `text` into `header` at `offset`, at most `width` bytes (header fields are ASCII: a
// path that is not goes in a pax record).
function put(header, offset, width, text) {
  const n = Math.min(width, text.length);
  for (let i = 0; i < n; i++) header[offset + i] = text.charCodeAt(i);
}

const isAscii = (s) => /^[\x20-\x7e]*$/.test(s);

// ustar's name and prefix for `path`, or null when ustar cannot hold it (pax must).
function ustarName(path) {
  if (!isAscii(path)) return null;
  if (path.length <= 100) return { name: path, prefix: "" };
  // Split at a "/" so that the part before fits in prefix (155) and the rest in name (100).
  for (let at = path.indexOf("/"); at >= 0; at = path.indexOf("/", at + 1)) {
    if (at <= 155 && path.length - at - 1 <= 100 && at < path.length - 1) {
      return { name: path.slice(at + 1), prefix: path.slice(0, at) };
    }
  }
  return null;
}

// One 512-byte header. `type` is "0" (a file) or "x" (a pax extended header).
function header({ name, prefix = "", size, mtime, type }) {
  const block = new Uint8Array(BLOCK);
  put(block, 0, 100, name);
  put(block, 100, 8, octal(0o644, 8));
  put(block, 108, 8, octal(0, 8));
  put(block, 116, 8, octal(0, 8));
  put(block, 124, 12, octal(Math.min(size, MAX_OCTAL_SIZE), 12));
  put(block, 136, 12, octal(Math.max(0, Math.floor(mtime)), 12));
  put(block, 148, 8, "        "); // the checksum counts its own field as spaces
  put(block, 156, 1, type);
  put(block, 257, 8, "ustar\x0000");
  put(block, 345, 155, prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i];
  put(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

// The bytes of `arrays`, one after another, in one array.
function joined(arrays) {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  arrays.reduce((at, a) => (out.set(a, at), at + a.length), 0);
  return out;
}

// One pax record, "LEN key=value\n", where LEN counts the whole record in bytes, itself included.
function paxRecord(key, value) {
  const body = utf8.encode(` ${key}=${value}\n`);
  let n = body.length + 1;
  while (String(n).length + body.length > n) n += 1;
  const record = new Uint8Array(n);
  record.set(utf8.encode(String(n)));
  record.set(body, n - body.length);
  return record;
}

const padding = (size) => new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);

// The parts for one file at `path` (slash-separated, relative).
function fileParts(path, file) {
  const mtime = (file.lastModified || 0) / 1000;
  const parts = [];
  let names = ustarName(path);
  if (!names || file.size > MAX_OCTAL_SIZE) {
    const records = [];
    if (!names) records.push(paxRecord("path", path));
    if (file.size > MAX_OCTAL_SIZE) records.push(paxRecord("size", String(file.size)));
    const data = joined(records);
    // The name fields still hold something readable for a reader without pax.
    const fallback = path.replace(/[^\x20-\x7e]/g, "_").slice(-100);
    parts.push(header({ name: `PaxHeader/${fallback}`.slice(0, 100), size: data.length, mtime,
      type: "x" }), data, padding(data.length));
    names = names || { name: fallback, prefix: "" };
  }
  parts.push(header({ ...names, size: file.size, mtime, type: "0" }), file, padding(file.size));
  return parts;
}

// A tar of `entries` ([{path, file}]), as a Blob of type application/x-tar. The small arrays
// between two files (padding, pax record, header) are joined into one part: a Blob's cost
// grows with its number of parts.
export function tarBlob(entries) {
  const parts = [];
  let pending = [];
  for (const { path, file } of entries) {
    for (const part of fileParts(path, file)) {
      if (part instanceof Uint8Array) {
        pending.push(part);
      } else {
        parts.push(joined(pending), part);
        pending = [];
      }
    }
  }
  pending.push(new Uint8Array(2 * BLOCK)); // the end of the archive: two zero blocks
  parts.push(joined(pending));
  return new Blob(parts, { type: "application/x-tar" });
}
